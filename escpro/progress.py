"""escpro's progress bars: one per long step, on stderr, with the figures that step's user wants.

- build: iterations done of the iterations the trees can still run (a tree that stops early
  shrinks the total), trees done, role calls/s, tokens, ETA. It moves with every committed
  iteration, not only when a whole tree finishes.
- train: optimizer steps, loss, ETA (escpro.train.progress, a transformers TrainerCallback).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"


def make_bar(total: int | None, desc: str, unit: str, enabled: bool = True) -> Any:
    """A tqdm bar in escpro's format on stderr (disabled: a no-op bar with the same methods)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, bar_format=BAR_FORMAT, leave=True)


class BuildProgress:
    """The build's bar, fed by the scheduler's commits (per-tree iteration counts from the tree
    rows) and its progress callback (call rates)."""

    def __init__(self, trees: Iterable[tuple[str, int]], max_iterations: int, enabled: bool = True):
        """`trees`: (tree_id, iterations already run) for every tree this build will run."""
        self.max_iterations = max_iterations
        self.start = {tid: it for tid, it in trees}
        self.done_it = dict(self.start)
        self.finished: set[str] = set()
        self.enabled = enabled
        self.bar = make_bar(self._total(), "build", "it", enabled) if enabled else None
        self._last = 0.0

    def _total(self) -> int:
        """Iterations this run will do: finished trees count what they ran, others the maximum."""
        return sum(self.done_it[t] - self.start[t] if t in self.finished
                   else max(self.max_iterations, self.done_it[t]) - self.start[t]
                   for t in self.start)

    def _done(self) -> int:
        return sum(self.done_it[t] - self.start[t] for t in self.start)

    def observe(self, commit: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """Wrap the scheduler's commit so every committed tree row moves the bar."""
        if not self.enabled:
            return commit

        async def wrapped(delta: Any) -> None:
            await commit(delta)
            self.saw(delta.tree_row)

        return wrapped

    def saw(self, row: dict) -> None:
        tid = row.get("tree_id")
        if tid not in self.start:
            return
        if row.get("iterations") is not None:
            self.done_it[tid] = max(self.done_it[tid], int(row["iterations"]))
        if row.get("status") in ("done", "failed"):
            self.finished.add(tid)

    def update(self, stats: Any, finished: str | None) -> None:
        """The scheduler's progress callback: refresh counts, rates and the total."""
        if self.bar is None:
            return
        now = time.monotonic()
        if finished is None and now - self._last < 0.5:
            return
        self._last = now
        self.bar.total = max(self._total(), 1)
        self.bar.n = self._done()
        tok = sum(stats.prompt_tokens.values()) + sum(stats.completion_tokens.values())
        calls = sum(stats.calls.values())
        post = {"trees": f"{len(self.finished)}/{len(self.start)}",
                "calls/s": f"{calls / max(stats.elapsed, 1e-9):.1f}", "tok": tok}
        if stats.trees_failed:
            post["failed"] = stats.trees_failed
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.n = self._done()
            self.bar.total = max(self.bar.n, 1) if self.finished == set(self.start) else self.bar.total
            self.bar.close()
