"""Many trees at once: up to `concurrent_trees` tree searches run as coroutines on one event loop,
so every role call of every tree is in flight together and the backends see large concurrent
batches (the RoleModel backends batch or pool them). Nothing sleeps, nothing polls.

Within a tree the calls that do not depend on each other go together: the r + 1 judgements of
a simulation, the gold turns' Strategy calls. Those share their dialogue prefix, so a server with
a prefix cache (vLLM) computes it once. Each tree has its own answer cache (reuse_answers): an
identical (role, model, prompt, sampling) request is answered once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from escpro.mcts.calls import CallRecorder
from escpro.mcts.config import BuildConfig
from escpro.mcts.parallel import TreeParallelSearch
from escpro.mcts.restore import CorruptTree, restore_state
from escpro.mcts.search import TreeSearch
from escpro.mcts.state import Delta, TreeState
from escpro.mcts.world import BadSeed, DialogueWorld, gold_layout
from escpro.roles.api import RoleSet
from escpro.seeds.model import Dialogue

log = logging.getLogger(__name__)


@dataclass
class SeedJob:
    dialogue: Dialogue
    tree_id: str
    tree_row: dict | None = None  # committed row when resuming
    node_rows: list[dict] = field(default_factory=list)
    seed_json: str | None = None  # the seed as stored in trees.seed (computed once per build)


@dataclass
class BuildStats:
    trees_total: int = 0
    trees_done: int = 0
    trees_failed: int = 0
    trees_skipped: int = 0  # already finished in the file (resume)
    iterations: int = 0
    calls: Counter = field(default_factory=Counter)  # role -> calls sent (not cached)
    cached: Counter = field(default_factory=Counter)
    failed_calls: Counter = field(default_factory=Counter)
    prompt_tokens: Counter = field(default_factory=Counter)
    completion_tokens: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (tree_id, reason)

    def add_delta(self, d: Delta) -> None:
        self.iterations += d.iterations_done
        for c in d.calls:
            role = c["role"]
            if c["cached"]:
                self.cached[role] += 1
            else:
                self.calls[role] += 1
            if c["status"] != "ok":
                self.failed_calls[role] += 1
            self.statuses[c["status"]] += 1
            self.prompt_tokens[role] += c["prompt_tokens"] or 0
            self.completion_tokens[role] += c["completion_tokens"] or 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rates(self) -> dict[str, float]:
        el = max(self.elapsed, 1e-9)
        return {role: n / el for role, n in self.calls.items()}

    def as_dict(self) -> dict:
        tokens = {
            r: {"prompt": self.prompt_tokens[r], "completion": self.completion_tokens[r]}
            for r in sorted(set(self.prompt_tokens) | set(self.completion_tokens))
        }
        return {
            "trees": {
                "total": self.trees_total,
                "done": self.trees_done,
                "failed": self.trees_failed,
                "skipped": self.trees_skipped,
            },
            "iterations": self.iterations,
            "calls": dict(self.calls),
            "cached_calls": dict(self.cached),
            "failed_calls": dict(self.failed_calls),
            "call_status": dict(self.statuses),
            "tokens": tokens,
            "total_tokens": sum(self.prompt_tokens.values()) + sum(self.completion_tokens.values()),
            "elapsed_s": round(self.elapsed, 3),
            "calls_per_s": round(sum(self.calls.values()) / max(self.elapsed, 1e-9), 2),
            "failures": [{"tree_id": t, "reason": r} for t, r in self.failures],
        }


def seed_record(d: Dialogue) -> dict:
    return {"index": d.index, **d.to_record()}


def search_class(cfg: BuildConfig) -> type[TreeSearch]:
    """One iteration at a time, or several of one tree in flight (tree_parallel > 1: virtual
    loss, escpro.mcts.parallel)."""
    return TreeParallelSearch if cfg.tree_parallel > 1 else TreeSearch


class Scheduler:
    def __init__(
        self,
        roles: RoleSet,
        cfg: BuildConfig,
        commit: Callable[[Delta], Awaitable[None]],
        run_id: str,
        progress: Callable[[BuildStats, str | None], None] | None = None,
    ):
        self.roles = roles
        self.cfg = cfg
        self._commit = commit
        self.run_id = run_id
        self.progress = progress
        self.stats = BuildStats()

    async def commit(self, delta: Delta) -> None:
        self.stats.add_delta(delta)
        await self._commit(delta)
        if self.progress is not None and delta.iterations_done:
            self.progress(self.stats, None)

    def _extra(self, job: SeedJob) -> dict:
        d = job.dialogue
        return {
            "run_id": (job.tree_row or {}).get("run_id") or self.run_id,
            "seed_id": d.seed_id,
            "seed_index": d.index,
            "scene": d.scene,
            "situation": d.situation,
            "seed": job.seed_json or json.dumps(seed_record(d), ensure_ascii=False),
        }

    async def run_tree(self, job: SeedJob) -> TreeState:
        extra = self._extra(job)
        names = list(self.roles.taxonomy.names)
        try:
            layout = gold_layout(job.dialogue, names)
            if job.tree_row is not None:
                state, tails = restore_state(job.tree_row, job.node_rows, layout, self.run_id)
            else:
                state, tails = TreeState(job.tree_id, self.run_id), {}
        except (BadSeed, CorruptTree) as exc:
            state = TreeState(job.tree_id, self.run_id, status="failed", error=str(exc))
            row = {**extra, "tree_id": job.tree_id, "status": "failed", "error": str(exc),
                   "iterations": 0, "end_count": 0, "node_count": 0}
            await self.commit(Delta(row))
            return state
        if state.status in ("done", "failed"):
            self.stats.trees_skipped += 1
            return state
        rec = CallRecorder(self.run_id, job.tree_id, [])
        cache: dict | None = {} if self.cfg.reuse_answers else None
        world = DialogueWorld(self.roles, job.dialogue, layout, rec, cache)
        world.gold_tails.update(tails)
        search = search_class(self.cfg)(state, world, self.cfg, self.commit, extra)
        return await search.run()

    async def run(self, jobs: list[SeedJob]) -> BuildStats:
        """Run every job, at most concurrent_trees at a time; returns the statistics."""
        self.stats.trees_total = len(jobs)
        queue: asyncio.Queue[SeedJob] = asyncio.Queue()
        for j in jobs:
            queue.put_nowait(j)

        async def worker() -> None:
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                st = await self.run_tree(job)
                if st.status == "failed":
                    if job.tree_row is None or job.tree_row.get("status") != "failed":
                        self.stats.trees_failed += 1
                        self.stats.failures.append((st.tree_id, st.error or "unknown"))
                elif st.status == "done":
                    if job.tree_row is None or job.tree_row.get("status") != "done":
                        self.stats.trees_done += 1
                if self.progress is not None:
                    self.progress(self.stats, st.tree_id)

        n = min(self.cfg.concurrent_trees, max(1, len(jobs)))
        await asyncio.gather(*(worker() for _ in range(n)))
        return self.stats

