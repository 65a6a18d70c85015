"""One tree's MCTS, as straight-line async code that awaits role calls (docs/paper.md section 3,
"One iteration, precisely").

The search state lives entirely in the nodes (kind, texts, prior, Q, N), the iteration count and
the failure counter, all of which are committed; the role answers are a function of the request
(deterministic with the sim backend). So a search rebuilt from committed rows (resume) takes
exactly the steps the uninterrupted one would have.

Failures: a role call that fails after the backend's own bounded retries is recorded. Losing a
rollout step or some judgements only shortens the estimate; losing a step that creates tree
state (extending a node, expanding one) or every judgement ends the iteration without
backpropagation ("no progress"). A failed iteration is tried again with varied sampling (the
role set starts where the failed try's retries ended), so an answer that fails for its request
is not asked for again unchanged. The tree is marked failed with the last error after
`max_consecutive_failures` iterations in a row without progress, a budget that grows with the
tree's share of failed iterations so far (up to `failure_budget_max` times): a flaky server
(a third of the calls failing) costs iterations, not trees, while a dead one still fails the
tree after a bounded number of tries. Other trees go on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from escpro.errors import EscproError, user_error
from escpro.mcts.config import BuildConfig
from escpro.mcts.protocol import IterationFailed, World
from escpro.mcts.state import Delta, TreeState, node_row
from escpro.mcts.tree import (
    Node,
    StopRules,
    add_child,
    backpropagate,
    highest_prior,
    mean_reward,
    select,
    stop_reason,
    walk,
)
from escpro.roles.api import Judgement
from escpro.store.ids import node_id

# A tree's calls per iteration before it has run one (only orders the calls of a tree in its
# first iteration against those of trees further on: a full iteration of the paper's search
# makes ~22 calls, an end node's judgement 1; a mid value keeps new trees from starving or
# jumping). Gold initialisations go before both (GOLD_PRIORITY).
PRIOR_CALLS_PER_ITERATION = 10.0
# Where a tree's gold initialisation queues: before any iteration's call (lower goes first).
GOLD_PRIORITY = float("-inf")

log = logging.getLogger(__name__)


__all__ = ["IterationFailed", "TreeSearch"]


class TreeSearch:
    """The search over one tree, one iteration at a time. `commit` is awaited at every commit
    point with a Delta. The world is anything implementing escpro.mcts.protocol.World;
    escpro.mcts.parallel.TreeParallelSearch runs several iterations of one tree at once."""

    def __init__(
        self,
        state: TreeState,
        world: World,
        cfg: BuildConfig,
        commit: Callable[[Delta], Awaitable[None]],
        tree_row_extra: dict | None = None,
    ):
        self.s = state
        self.world = world
        self.cfg = cfg
        self.commit = commit
        self.extra = dict(tree_row_extra or {})
        self.judgements: list[dict] = []
        self.rules = StopRules(
            cfg.min_iterations, cfg.max_iterations, cfg.min_end_nodes, cfg.max_end_nodes
        )
        self._iter_calls = 0  # calls of the iterations this search ran, for remaining_calls()
        self._iters_run = 0

    def remaining_calls(self, next_iteration: int) -> float:
        """An estimate of the calls this tree has left, from its own calls per iteration so far.
        The backends serve the trees with the most work left first when calls queue (a build
        ends with its longest tree: longest-remaining-work-first shortens that tree's waits)."""
        left = max(self.cfg.max_iterations - next_iteration + 1, 1)
        per = self._iter_calls / self._iters_run if self._iters_run else PRIOR_CALLS_PER_ITERATION
        return left * per

    # ---- commit points ----
    def tree_row(self) -> dict:
        s = self.s
        return {
            **self.extra,
            "tree_id": s.tree_id,
            "status": s.status,
            "iterations": s.iterations,
            "end_count": s.end_count,
            "error": s.error,
            "stop_reason": s.stop_reason,
            "consecutive_failures": s.consecutive_failures,
            "failed_iterations": s.failed_iterations,
            "node_count": s.node_count,
        }

    async def _flush(self, iterations_done: int = 0) -> None:
        s = self.s
        nodes = [node_row(s.tree_id, nd) for nd in s.dirty.values()]
        s.dirty.clear()
        calls = self.world.drain_calls()
        if iterations_done:
            self._iter_calls += len(calls)
            self._iters_run += iterations_done
        judg, self.judgements = self.judgements, []
        row = self.tree_row()
        await self._commit(Delta(row, nodes, judg, calls, iterations_done))

    async def _commit(self, delta: Delta) -> None:
        """A commit that fails (disk full, the file gone) stops the build with one error: it is
        not this tree's fault, and what was committed before stays (the build resumes)."""
        try:
            await self.commit(delta)
        except EscproError:
            raise
        except Exception as exc:
            err = user_error(exc) or EscproError(f"storing the trees failed: {type(exc).__name__}: {exc}")
            raise err from exc

    # ---- gold initialisation (iteration 0) ----
    async def init_gold(self) -> None:
        """The seed becomes the tree's first path: the root (first seeker turn) and one gold
        node per gold supporter turn, Q = gold_q, N = gold_n; the other actions the world
        offers at each gold turn become unexpanded siblings."""
        cfg, s, w = self.cfg, self.s, self.world
        w.start_iteration(0)
        # A tree that has not started has all its work left, more than any started tree, so
        # its gold turns' Strategy calls go before every iteration's calls: the burst of 64
        # trees x 8 gold calls then ends as early as the slots allow (~0.8 s on 64 slots)
        # instead of the last trees' gold waiting behind the first trees' iterations (up to
        # ~1.5 s; the tree that decides the build's end may be one of them). Measured in
        # docs/performance.md ("Gold initialisation first").
        w.priority = GOLD_PRIORITY
        # Failed scorings are asked again (a live backend may answer next time), as often as an
        # iteration may fail in a row.
        gold = await w.gold_path(
            cfg.max_consecutive_failures, cfg.gold_unscored_scale, cfg.gold_unscored_prior
        )
        root = Node(
            path=(), kind="root", q=cfg.gold_q, n=cfg.gold_n, is_gold=True,
            seeker_text=gold.root_seeker_text, created_iter=0,
        )
        parent = root
        for k, step in enumerate(gold.steps):
            gold_node = None
            last = k == len(gold.steps) - 1
            for a in step.siblings:
                if a.index == step.action.index:
                    gold_node = add_child(
                        parent, a.index, kind="end" if last else "expanded", strategy=a.label,
                        prior=a.prior, q=cfg.gold_q, n=cfg.gold_n,
                        supporter_text=step.supporter_text, seeker_text=step.seeker_text,
                        is_end=last, is_gold=True, created_iter=0, strategy_score=a.score,
                    )
                else:
                    add_child(
                        parent, a.index, kind="unexpanded", strategy=a.label, prior=a.prior,
                        created_iter=0, strategy_score=a.score,
                    )
            assert gold_node is not None
            parent = gold_node
        s.root = root
        s.end_count = 1
        s.mark(*walk(root))
        s.node_count = len(s.dirty)

    # ---- one iteration ----
    async def _extend(self, node: Node, it: int) -> None:
        """Take an unexpanded node's action: -> expanded, or end."""
        ext = await self.world.extend(node)
        if ext is None:
            raise IterationFailed(self.world.last_error)
        node.supporter_text, node.seeker_text = ext.supporter_text, ext.seeker_text
        node.is_end = ext.is_end
        node.kind = "end" if node.is_end else "expanded"
        if node.is_end:
            self.s.end_count += 1
        self.s.mark(node)

    async def _expand(self, node: Node, it: int) -> None:
        """The world's actions from `node` become unexpanded children, Q = N = 0."""
        actions = await self.world.expand(node)
        if actions is None:
            raise IterationFailed(self.world.last_error)
        for a in actions:
            ch = add_child(
                node, a.index, kind="unexpanded", strategy=a.label, prior=a.prior,
                created_iter=it, strategy_score=a.score,
            )
            self.s.mark(ch)
            self.s.node_count += 1

    def _judgement_rows(self, node: Node, it: int, js: list[Judgement | None]) -> list[float]:
        rewards = []
        for off, j in enumerate(js):
            if j is None:
                continue
            rewards.append(j.reward)
            self.judgements.append(
                {
                    "node_id": node_id(self.s.tree_id, node.path),
                    "iteration": it,
                    "empathy": j.empathy,
                    "information": j.information,
                    "humanoid": j.humanoid,
                    "strategy_score": j.strategy,
                    "reward": j.reward,
                    "tree_id": self.s.tree_id,
                    "turn_offset": off,
                }
            )
        return rewards

    async def _judge_and_backprop(self, node: Node, states: list | None, it: int) -> None:
        """Judge `node` (states None) or the states of a rollout from it; backpropagate the mean."""
        js = await self.world.judge(node, states)
        reward = mean_reward(self._judgement_rows(node, it, js))
        if reward is None:
            raise IterationFailed(self.world.last_error)
        self.s.mark(*backpropagate(node, reward))

    async def iteration(self, it: int) -> None:
        """Select a leaf by PUCB, then run the rest of the iteration from it."""
        self.world.start_iteration(it, self.s.consecutive_failures)
        await self._iterate(select(self.s.root, self.cfg.c)[-1], it)

    async def _iterate(self, leaf: Node, it: int) -> None:
        """Extend the leaf if unexpanded; an end node is judged once and backpropagated;
        otherwise expand it, extend the highest-prior child, and judge it once (end) or roll
        out and backpropagate the mean of r + 1 judgements from the child."""
        if leaf.kind == "unexpanded":
            await self._extend(leaf, it)
        if leaf.is_end:
            await self._judge_and_backprop(leaf, None, it)
            return
        await self._expand(leaf, it)
        child = highest_prior(leaf.children)
        await self._extend(child, it)
        if child.is_end:
            await self._judge_and_backprop(child, None, it)
            return
        states = await self.world.roll_out(child, self.cfg.sim_max_rounds)
        await self._judge_and_backprop(child, list(states), it)

    def failure_budget(self) -> int:
        """Failed iterations in a row the tree may have: max_consecutive_failures / (1 - f), f
        the share of its iterations that failed (this one counted), at most failure_budget_max
        times the base; the base while no iteration has succeeded (nothing shows the roles can
        answer: a misconfigured role fails fast). Pure function of committed counters, so a
        resumed tree decides alike."""
        base = self.cfg.max_consecutive_failures
        cap = max(base, math.ceil(base * self.cfg.failure_budget_max))
        s = self.s
        f = s.failed_iterations / max(s.iterations + 1, 1)
        if f >= 1:
            return base
        return min(cap, max(base, math.ceil(base / (1 - f))))

    def _iteration_failed(self, exc: IterationFailed) -> bool:
        """Count a failed iteration; True when the tree must now be marked failed."""
        s = self.s
        s.consecutive_failures += 1
        s.failed_iterations += 1
        s.error = str(exc)
        if s.consecutive_failures >= self.failure_budget():
            s.status = "failed"
            s.error = (f"{s.consecutive_failures} iterations in a row failed ({s.failed_iterations} of "
                       f"{s.iterations + 1}); last: {exc}")
            return True
        return False

    async def run_iterations(self) -> None:
        """Iterations one after another until a stopping rule holds or the tree fails."""
        s = self.s
        while True:
            reason = stop_reason(s.iterations, s.end_count, self.rules)
            if reason is not None:
                s.status, s.stop_reason = "done", reason
                return
            it = s.iterations + 1
            self.world.priority = -self.remaining_calls(it)
            try:
                await self.iteration(it)
                s.consecutive_failures = 0
            except IterationFailed as exc:
                if self._iteration_failed(exc):
                    s.iterations = it
                    return
            s.iterations = it
            await self._flush(1)

    # ---- the whole search ----
    async def run(self) -> TreeState:
        s = self.s
        if s.status in ("done", "failed"):
            return s
        try:
            if s.root is None:
                s.status = "running"
                try:
                    await self.init_gold()
                except IterationFailed as exc:
                    s.status, s.error = "failed", str(exc)
                    await self._flush()
                    return s
                await self._flush()
            s.status = "running"
            await self.run_iterations()
            await self._flush()
        except EscproError:  # the store gave up (e.g. the file stayed locked): stop the build
            raise
        except Exception as exc:  # a bug or an unexpected backend error: fail this tree only
            log.exception("tree %s crashed", s.tree_id)
            s.status, s.error = "failed", f"{type(exc).__name__}: {exc}"
            s.dirty.clear()
            self.judgements.clear()
            self.world.drain_calls()
            await self._commit(Delta(self.tree_row()))
        return s
