"""The bookkeeping of a tree's role calls: deterministic ids per iteration, the typed priority
and retry round every call carries, and one llm_calls row per call (drained by the search at
each commit point). Kept apart from the world (world.py), which decides what is asked."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from escpro.roles.api import Outcome
from escpro.store.ids import call_id, node_id


@dataclass
class _IterCalls:
    """The calls of one iteration: its number and the next call's position in it."""

    iteration: int
    seq: int = 0
    last_error: str | None = None


# The current iteration of the running task: with tree-parallel search several iterations of
# one tree run as separate tasks, each numbering its own calls.
_CURRENT: contextvars.ContextVar[_IterCalls | None] = contextvars.ContextVar(
    "escpro_iteration_calls", default=None
)


@dataclass
class CallRecorder:
    """Collects llm_calls rows of one tree; the search drains them at each commit point."""

    run_id: str
    tree_id: str
    rows: list[dict]
    failures: int = 0
    # Where the backends queue this tree's calls when more wait than the server takes (lower
    # first; None: by iteration). The search sets it to minus its estimate of the calls left.
    priority: float | None = None
    # How many times in a row this tree's last iterations failed: the role set varies a retried
    # iteration's sampling by it, so an answer that failed for its request is not asked again.
    retry_round: int = 0

    def start_iteration(self, iteration: int) -> None:
        """Number the calls of the current task from 0 under `iteration`."""
        _CURRENT.set(_IterCalls(iteration))

    @property
    def _cur(self) -> _IterCalls:
        cur = _CURRENT.get()
        if cur is None:
            cur = _IterCalls(0)
            _CURRENT.set(cur)
        return cur

    @property
    def iteration(self) -> int:
        return self._cur.iteration

    @property
    def last_error(self) -> str | None:
        return self._cur.last_error

    def next_meta(self, path: tuple[int, ...] | None) -> dict[str, Any]:
        cur = self._cur
        cid = call_id(self.tree_id, cur.iteration, cur.seq)
        cur.seq += 1
        return {
            "call_id": cid,
            "tree_id": self.tree_id,
            "node_id": node_id(self.tree_id, path) if path is not None else None,
            "iteration": cur.iteration,
        }

    def call_priority(self) -> float:
        """Where the next call queues: the search's estimate (minus the tree's remaining work),
        else the iteration (the tree furthest behind first)."""
        return self.priority if self.priority is not None else self._cur.iteration

    def note_error(self, outcome: Outcome) -> None:
        """Make a failed call the iteration's reason (the one an IterationFailed names)."""
        r = outcome.result
        self._cur.last_error = f"{r.request.role}: {r.status}: {r.error or 'no value'}"

    def record(self, meta: dict[str, Any], outcome: Outcome) -> None:
        r = outcome.result
        req = r.request
        if r.status != "ok" or outcome.value is None:
            self.failures += 1
            self.note_error(outcome)
        self.rows.append(
            {
                "call_id": meta["call_id"],
                "run_id": self.run_id,
                "tree_id": self.tree_id,
                "node_id": meta["node_id"],
                "iteration": meta["iteration"],
                "role": req.role,
                "backend": r.backend,
                "model": r.model,
                "prompt_hash": req.key(r.model),
                "prompt_tokens": int(r.prompt_tokens or 0),
                "completion_tokens": int(r.completion_tokens or 0),
                "latency_ms": float(r.latency_ms or 0.0),
                "status": r.status if outcome.value is not None or r.status != "ok" else "invalid",
                "error": r.error,
                "response": r.text,
                "attempts": int(r.attempts or 1),
                "cached": bool(r.cached),
                "truncated_turns": int(r.truncated_turns or 0),
            }
        )
