"""What bench_build.py measures besides wall time: the bound no client can beat, and each tree's
chain of dependent calls counted from the actual run (kept apart so tests can check them alone)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field


def bound_s(calls: int, chains: Sequence[int], latency_s: float, capacity: int) -> float:
    """The shortest wall time any client could reach: the server answers at most `capacity`
    calls per `latency_s`, and a tree's dependent calls (its chain of steps; concurrent calls of
    one tree are one step) take `latency_s` each, one after the other."""
    if capacity < 1:
        raise ValueError("capacity must be >= 1")
    throughput = calls * latency_s / capacity
    chain = max(chains, default=0) * latency_s
    return max(throughput, chain)


@dataclass
class Chains:
    """Per tree: its longest chain of dependent calls so far. A call can depend only on the calls
    of its tree that had finished when it was sent (sent, not started: a wait for a server slot
    does not count), so its step is one after the latest of theirs; calls sent together, or
    beside a call still running, share a step.

    (The simpler count, "a call sent while none of its tree's calls is in flight opens a step",
    is the same while a tree's calls go in lockstep, but misses steps once they overlap
    staggered: a rollout's judgement runs beside a Seeker call and is still in flight when the
    next Strategy call is sent.) Exact while a tree runs one iteration at a time and no call is
    retried (this benchmark); with tree_parallel > 1 or retries a call can be placed after one it
    does not depend on, so the count is then an upper bound of the chain."""

    steps: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, tree: str) -> int:
        """A call of `tree` is sent: its step (pass it to `end`)."""
        with self.lock:
            return self.steps[tree] + 1

    def end(self, tree: str, step: int) -> None:
        with self.lock:
            if step > self.steps[tree]:
                self.steps[tree] = step


class ChainCounting:
    """Wraps a RoleModel: every request sent is counted in its tree's chain (meta["tree_id"])."""

    def __init__(self, inner, chains: Chains):
        self._inner = inner
        self._chains = chains
        # What the role set reads on every call, copied once (__getattr__ costs a call each time).
        for name in ("backend", "model", "handles_timeout", "call_budget_s", "needs_transcript"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def generate(self, requests):
        trees = [str(r.meta.get("tree_id")) for r in requests]
        steps = [self._chains.start(t) for t in trees]
        try:
            return await self._inner.generate(requests)
        finally:
            for t, step in zip(trees, steps, strict=True):
                self._chains.end(t, step)

    async def aclose(self) -> None:
        await self._inner.aclose()


def counted_roleset(cfg, chains: Chains, random_seed: int):
    from escpro.roles.roleset import build_roleset
    from escpro.taxonomy import load_taxonomy

    rs = build_roleset(cfg.roles, load_taxonomy(cfg.build.taxonomy), random_seed=random_seed)
    wrapped: dict[int, ChainCounting] = {}
    for role, m in list(rs.models.items()):
        rs.models[role] = wrapped.setdefault(id(m), ChainCounting(m, chains))
    return rs
