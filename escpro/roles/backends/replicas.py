"""Several servers of one model (replicas on several machines): least outstanding requests,
per-replica health, failover.

When one vLLM server is not enough, vLLM scales itself inside a server (tensor/data parallelism,
serving/*.yaml); beyond one machine a role lists several base URLs (`roles.<role>.replica_urls`,
or a list as `base_url` in the endpoints file). Each call goes to the healthy replica with the
fewest requests in flight (ties rotate), so a slow or busy replica gets less work. A replica whose
call fails at the transport level (connection refused, 5xx, timeout, malformed body) is marked
down for `cooldown_s` (doubling while it keeps failing, up to `max_cooldown_s`) and the call moves
to another replica at once; after its cool-down the replica gets one trial call (half-open) and
is healthy again when that succeeds. Answers the model got wrong (invalid JSON) and 4xx
rejections are the request's fault, not the replica's: they are returned as they are.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from escpro.roles.backends.openai import OpenAIModel
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.config import RoleBinding


@dataclass
class Replica:
    model: OpenAIModel
    outstanding: int = 0
    calls: int = 0
    failures: int = 0
    down_until: float = 0.0
    cooldown_s: float = 0.0
    probing: bool = False  # a half-open trial call is in flight

    @property
    def url(self) -> str:
        return self.model.base_url


def transport_failure(res: RoleResult) -> bool:
    """A failure that says the replica is unwell (not that the request or the answer was bad)."""
    if res.status == "timeout":
        return True
    if res.status != "error":
        return False
    err = res.error or ""
    return not err.startswith("HTTP 4") or err.startswith("HTTP 429")


@dataclass
class ReplicaSet:
    """A RoleModel over replicas of one model (each an OpenAIModel without transport retries:
    the set retries on another replica instead of waiting on a dead one)."""

    replicas: list[Replica]
    attempts: int = 4
    backoff_s: float = 0.5
    cooldown_s: float = 2.0
    max_cooldown_s: float = 60.0
    backend: str = "openai"
    handles_timeout: bool = True
    _rr: Any = field(default_factory=itertools.count)

    @classmethod
    def from_binding(cls, b: RoleBinding, *, timeout_s: float = 120.0) -> ReplicaSet:
        urls = [b.base_url, *b.replica_urls]
        models = [OpenAIModel.from_binding(b.model_copy(update={"base_url": u, "replica_urls": [], "http_retries": 0}),
                                           timeout_s=timeout_s) for u in urls]
        return cls([Replica(m) for m in models], attempts=1 + b.http_retries, backoff_s=b.backoff_s)

    @property
    def model(self) -> str:
        return self.replicas[0].model.model

    @property
    def needs_transcript(self) -> bool:
        return self.replicas[0].model.needs_transcript

    @property
    def call_budget_s(self) -> float:
        one = self.replicas[0].model.call_budget_s
        return one * self.attempts + sum(self.backoff_s * 2**i for i in range(self.attempts)) + 1.0

    def _pick(self, exclude: set[int]) -> Replica | None:
        """A down replica whose cool-down is over gets one trial call (half-open); otherwise the
        healthy replica with the fewest calls in flight; None when every replica is down."""
        now = time.monotonic()
        start = next(self._rr)
        n = len(self.replicas)
        order = [self.replicas[(start + i) % n] for i in range(n)]
        for r in order:
            if id(r) not in exclude and r.down_until and r.down_until <= now and not r.probing:
                r.probing = True
                return r
        healthy = [r for r in order if id(r) not in exclude and r.down_until == 0.0]
        if healthy:
            return min(healthy, key=lambda r: r.outstanding)
        return None

    def _mark(self, rep: Replica, ok: bool) -> None:
        """Healthy again after any success; down after a failure. The cool-down doubles only when
        a trial call fails (calls that were in flight when it went down fail together)."""
        trial, rep.probing = rep.probing, False
        if ok:
            rep.down_until, rep.cooldown_s = 0.0, 0.0
            return
        rep.failures += 1
        if rep.down_until == 0.0:
            rep.cooldown_s = self.cooldown_s
        elif trial:
            rep.cooldown_s = min(self.max_cooldown_s, rep.cooldown_s * 2)
        else:
            return
        rep.down_until = time.monotonic() + rep.cooldown_s

    async def _one(self, req: RoleRequest) -> RoleResult:
        tried: set[int] = set()
        last: RoleResult | None = None
        t0 = time.perf_counter()
        for attempt in range(self.attempts):
            rep = self._pick(tried)
            if rep is None:  # every replica down or tried: wait, then try any that cooled down
                tried.clear()
                await asyncio.sleep(self.backoff_s * 2**attempt)
                rep = self._pick(tried) or min(self.replicas, key=lambda r: r.down_until)
            rep.outstanding += 1
            rep.calls += 1
            try:
                res = (await rep.model.generate([req]))[0]
            finally:
                rep.outstanding -= 1
            bad = transport_failure(res)
            self._mark(rep, not bad)
            if bad and rep.outstanding == 0:
                await rep.model.aclose()  # its pooled connections may be dead: reconnect on the trial
            if not bad:
                res.attempts, res.latency_ms = attempt + 1, (time.perf_counter() - t0) * 1000
                return res
            tried.add(id(rep))
            last = res
        assert last is not None
        last.attempts, last.latency_ms = self.attempts, (time.perf_counter() - t0) * 1000
        last.error = f"{last.error} (every replica tried; {self.attempts} attempts)"
        return last

    async def generate(self, requests: Sequence[RoleRequest]) -> list[RoleResult]:
        if len(requests) == 1:
            return [await self._one(requests[0])]
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    def stats(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [{"url": r.url, "calls": r.calls, "failures": r.failures, "outstanding": r.outstanding,
                 "healthy": r.down_until == 0.0, "cooling_s": max(0.0, r.down_until - now) if r.down_until else 0.0}
                for r in self.replicas]

    async def aclose(self) -> None:
        for r in self.replicas:
            await r.model.aclose()
