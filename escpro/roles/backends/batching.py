"""Coalescing many single-request generate() calls into batched engine calls on a worker thread.

In-process engines (transformers, vLLM offline, llama.cpp) compute synchronously. Hundreds of tree
coroutines each await one request; the coalescer collects what arrives within `batch_wait_s`
(up to `batch_size`), groups requests an engine can run in one call (`group_key`), and runs each
group with `run_batch` on a single worker thread, so the event loop keeps scheduling trees while
the model computes.

Timeouts start when a request's batch starts computing, not when it is queued: behind a long
queue on a CPU, a request is not late, only waiting for its turn (the queue drains, since every
generate is capped by max_tokens). The RoleSet therefore leaves these backends' timeouts to them
(`handles_timeout`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from escpro.roles.backends.common import failed
from escpro.roles.base import RoleRequest, RoleResult


class BatchingModel:
    backend = "batching"
    model = ""
    handles_timeout = True

    def __init__(self, *, batch_size: int = 8, batch_wait_ms: float = 5.0, timeout_s: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_ms / 1000.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"escpro-{self.backend}")
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # engine calls made (stats, tests)
        self.batched_requests = 0

    # --- to implement ---------------------------------------------------------------------------
    def group_key(self, req: RoleRequest) -> str:
        s = req.sampling
        return f"{req.schema is not None}|{s.temperature}|{s.top_p}|{s.max_tokens}|{list(s.stop)}"

    def run_batch(self, reqs: list[RoleRequest]) -> list[RoleResult]:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- machinery ------------------------------------------------------------------------------
    def _safe_run(self, reqs: list[RoleRequest]) -> list[RoleResult]:
        try:
            results = self.run_batch(reqs)
        except Exception as exc:  # one bad batch is a recorded failure of its requests
            return [failed(r, "error", f"{type(exc).__name__}: {exc}", backend=self.backend, model=self.model)
                    for r in reqs]
        self.batches += 1
        self.batched_requests += len(reqs)
        return results

    async def _worker_loop(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.batch_size:
                try:
                    batch.append(queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            groups: dict[str, list[tuple[RoleRequest, asyncio.Future, asyncio.Event]]] = {}
            for req, fut, started in batch:
                if not fut.cancelled():
                    groups.setdefault(self.group_key(req), []).append((req, fut, started))
            for items in groups.values():
                for _, _, started in items:
                    started.set()
                try:
                    results = await loop.run_in_executor(self._executor, self._safe_run, [r for r, _, _ in items])
                except Exception as exc:  # executor shut down
                    results = [failed(r, "error", f"{type(exc).__name__}: {exc}", backend=self.backend,
                                      model=self.model) for r, _, _ in items]
                for (_, fut, _), res in zip(items, results):
                    if not fut.done():
                        fut.set_result(res)

    def _ensure_worker(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._loop = loop
            self._worker = loop.create_task(self._worker_loop(self._queue))
        return self._queue

    async def _await_one(self, req: RoleRequest, fut: asyncio.Future, started: asyncio.Event) -> RoleResult:
        await started.wait()
        if self.timeout_s is None:
            return await fut
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
        except TimeoutError:
            return failed(req, "timeout", f"generation took longer than {self.timeout_s:g} s",
                          backend=self.backend, model=self.model, latency_ms=self.timeout_s * 1000)

    async def generate(self, requests: Sequence[RoleRequest]) -> list[RoleResult]:
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        waits = []
        for r in requests:
            fut, started = loop.create_future(), asyncio.Event()
            queue.put_nowait((r, fut, started))
            waits.append(self._await_one(r, fut, started))
        if len(waits) == 1:
            return [await waits[0]]
        return list(await asyncio.gather(*waits))

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
        self._worker = None

    def close_sync(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def fold_system(messages: list[dict]) -> list[dict]:
    """Messages with the system text folded into the first user turn (templates without a
    system role, e.g. Gemma)."""
    if len(messages) > 1 and messages[0]["role"] == "system":
        first = {"role": messages[1]["role"], "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}
        return [first] + messages[2:]
    return messages
