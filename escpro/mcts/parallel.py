"""Tree-parallel search (option `build.tree_parallel`, off by default): several iterations of
one tree in flight, spread over the tree by virtual loss and leaf reservations. The scheduler
picks this class instead of TreeSearch when tree_parallel > 1."""

from __future__ import annotations

import asyncio

from escpro.mcts.protocol import IterationFailed
from escpro.mcts.search import TreeSearch
from escpro.mcts.tree import Node, select, stop_reason


class TreeParallelSearch(TreeSearch):
    """Up to `tree_parallel` iterations of this tree in flight. Each selection adds a virtual
    loss along its path and reserves its leaf (busy), so the next selections spread out.
    Iteration numbers are allocated at selection time (so call ids never repeat, even after a
    resume); replay after a crash is valid but not identical."""

    async def _one(self, path: list[Node], it: int) -> None:
        self.world.start_iteration(it)
        try:
            await self._iterate(path[-1], it)
            self.s.consecutive_failures = 0
        except IterationFailed as exc:
            self._iteration_failed(exc)
        finally:
            for nd in path:
                nd.vl -= 1
            path[-1].busy = False
        await self._flush(1)

    def _launch(self) -> asyncio.Task | None:
        """Select and reserve the next leaf and start its iteration (None: nothing to start)."""
        s, cfg = self.s, self.cfg
        if s.status == "failed" or stop_reason(s.iterations, s.end_count, self.rules) is not None:
            return None
        path = select(s.root, cfg.c, cfg.virtual_loss)
        if path is None:
            return None  # everything selectable is being worked on
        for nd in path:
            nd.vl += 1
        path[-1].busy = True
        s.iterations += 1
        return asyncio.create_task(self._one(path, s.iterations))

    async def run_iterations(self) -> None:
        s = self.s
        inflight: set[asyncio.Task] = set()
        try:
            while True:
                while len(inflight) < self.cfg.tree_parallel:
                    task = self._launch()
                    if task is None:
                        break
                    inflight.add(task)
                if not inflight:
                    break
                done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()
        finally:
            for t in inflight:
                t.cancel()
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)
        if s.status != "failed":
            s.status = "done"
            s.stop_reason = stop_reason(s.iterations, s.end_count, self.rules) or "nothing_selectable"
