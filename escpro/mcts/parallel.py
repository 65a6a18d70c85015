"""Tree-parallel search (option `build.tree_parallel`, off by default): several iterations of
one tree in flight, spread over the tree by virtual loss and leaf reservations."""

from __future__ import annotations

import asyncio

from escpro.mcts.search import IterationFailed, TreeSearch
from escpro.mcts.tree import Node, select, stop_reason


async def _one(self: TreeSearch, path: list[Node], it: int) -> None:
    self.world.rec.start_iteration(it)
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


async def run_parallel(self: TreeSearch) -> None:
    """Tree-parallel search: up to `tree_parallel` iterations of this tree in flight. Each
    selection adds a virtual loss along its path and reserves its leaf (busy), so the next
    selections spread out. Iteration numbers are allocated at selection time (so call ids
    never repeat, even after a resume); replay after a crash is valid but not identical."""
    s, cfg = self.s, self.cfg
    inflight: set[asyncio.Task] = set()
    try:
        while True:
            while len(inflight) < cfg.tree_parallel and s.status != "failed":
                reason = stop_reason(s.iterations, s.end_count, self.rules)
                if reason is not None:
                    break
                path = select(s.root, cfg.c, cfg.virtual_loss)
                if path is None:
                    break  # everything selectable is being worked on
                for nd in path:
                    nd.vl += 1
                path[-1].busy = True
                s.iterations += 1
                inflight.add(asyncio.create_task(_one(self, path, s.iterations)))
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

