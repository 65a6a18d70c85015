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
from escpro.mcts.state import Delta, TreeState, node_row
from escpro.mcts.tree import (
    Node,
    StopRules,
    add_child,
    backpropagate,
    gold_child_priors,
    greedy_strategy,
    highest_prior,
    mean_reward,
    select,
    stop_reason,
    walk,
)
from escpro.mcts.world import DialogueWorld
from escpro.roles.api import DialogueContext, Judgement, Utterance
from escpro.store.ids import node_id

# A tree's calls per iteration before it has run one (only orders the waiting calls of trees
# that have not started against those that have: a full iteration of the paper's search makes
# ~22 calls, an end node's judgement 1; a mid value keeps new trees from starving or jumping).
PRIOR_CALLS_PER_ITERATION = 10.0

log = logging.getLogger(__name__)


class IterationFailed(Exception):
    """An iteration that could not make progress (the reason is the last failed call)."""


class TreeSearch:
    """The search over one tree. `commit` is awaited at every commit point with a Delta."""

    def __init__(
        self,
        state: TreeState,
        world: DialogueWorld,
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
        calls, self.world.rec.rows = self.world.rec.rows, []
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
        node per gold supporter turn, Q = gold_q, N = gold_n; at each gold turn the Strategy role
        scores the strategies on the FULL history and the others become unexpanded siblings."""
        cfg, s, w = self.cfg, self.s, self.world
        lay = w.layout
        names = w.names
        w.rec.start_iteration(0)
        # The gold turns' Strategy calls are one step of the tree's chain, so the tree has about
        # as much work left as one that has started its first iteration. Between the two the
        # started tree's call goes first: one slot moves it a step, while a gold initialisation
        # moves its tree only once all its calls are answered (docs/performance.md: -0.16 s on
        # average over 4 seeds x 2 alternating runs of bench_build.py).
        w.rec.priority = -self.remaining_calls(1) + 0.5
        root = Node(
            path=(), kind="root", q=cfg.gold_q, n=cfg.gold_n, is_gold=True,
            seeker_text=lay.root_seeker_text, created_iter=0,
        )
        # Contexts before each gold turn are known from the seed: score them all at once.
        ctxs: list[DialogueContext] = []
        ctx = w.root_context()
        for gt in lay.turns:
            ctxs.append(ctx)
            ctx = ctx.extend(Utterance("supporter", gt.text, gt.strategy), *gt.tail)
        parent_paths: list[tuple[int, ...]] = []
        path: tuple[int, ...] = ()
        for gt in lay.turns:
            parent_paths.append(path)
            path = path + (names.index(gt.strategy),)
        scores_list = await w.score_many(ctxs, parent_paths)
        # Failed turns are asked again (a live backend may answer next time), as often as an
        # iteration may fail in a row; all of it is iteration 0 with distinct call ids.
        for rnd in range(1, cfg.max_consecutive_failures):
            failed = [i for i, sc in enumerate(scores_list) if sc is None]
            if not failed:
                break
            w.rec.retry_round = rnd
            again = await w.score_many([ctxs[i] for i in failed], [parent_paths[i] for i in failed])
            for i, sc in zip(failed, again, strict=True):
                scores_list[i] = sc
        w.rec.retry_round = 0
        failed = [i for i, sc in enumerate(scores_list) if sc is None]
        if failed:
            raise IterationFailed(
                f"gold initialisation: strategy scoring failed at gold turn {failed[0]}: "
                f"{w.rec.last_error}"
            )
        parent = root
        for k, (gt, scores) in enumerate(zip(lay.turns, scores_list, strict=True)):
            priors = gold_child_priors(
                names, scores, gt.strategy, w.roles.prior,
                cfg.gold_unscored_scale, cfg.gold_unscored_prior,
            )
            gold_node = None
            last = k == len(lay.turns) - 1
            for strat, p in priors.items():
                idx = names.index(strat)
                if strat == gt.strategy:
                    tail_seeker = [u.text for u in gt.tail if u.speaker == "seeker"]
                    gold_node = add_child(
                        parent, idx, kind="end" if last else "expanded", strategy=strat,
                        prior=p, q=cfg.gold_q, n=cfg.gold_n, supporter_text=gt.text,
                        seeker_text="\n".join(tail_seeker), is_end=last, is_gold=True,
                        created_iter=0, strategy_score=scores.get(strat),
                    )
                    w.gold_tails[gold_node.path] = gt.tail
                else:
                    add_child(
                        parent, idx, kind="unexpanded", strategy=strat, prior=p,
                        created_iter=0, strategy_score=scores.get(strat),
                    )
            assert gold_node is not None
            parent = gold_node
        s.root = root
        s.end_count = 1
        s.mark(*walk(root))
        s.node_count = len(s.dirty)

    # ---- one iteration ----
    async def _extend(self, node: Node, it: int) -> None:
        """Supporter (with the node's strategy), then Seeker: unexpanded -> expanded or end."""
        w = self.world
        ctx = w.context(node.parent)
        sup = await w.support(ctx, node.strategy, node.path)
        if sup is None:
            raise IterationFailed(w.rec.last_error)
        seek = await w.seek(ctx.extend(Utterance("supporter", sup, node.strategy)), node.path)
        if seek is None:
            raise IterationFailed(w.rec.last_error)
        node.supporter_text, node.seeker_text = sup, seek.text
        node.is_end = bool(seek.is_end)
        node.kind = "end" if node.is_end else "expanded"
        if node.is_end:
            self.s.end_count += 1
        self.s.mark(node)

    async def _expand(self, node: Node, it: int) -> None:
        """One Strategy call creates one unexpanded child per scored strategy, Q = N = 0."""
        w = self.world
        scores = await w.score(w.context(node), node.path)
        if scores is None:
            raise IterationFailed(w.rec.last_error)
        priors = w.roles.prior(scores)
        names = w.names
        for strat, p in priors.items():
            ch = add_child(
                node, names.index(strat), kind="unexpanded", strategy=strat, prior=p,
                created_iter=it, strategy_score=scores.get(strat),
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

    async def _judge_and_backprop(self, node: Node, ctxs: list[DialogueContext], it: int) -> None:
        js = await self.world.judge_many(ctxs, node.path)
        reward = mean_reward(self._judgement_rows(node, it, js))
        if reward is None:
            raise IterationFailed(self.world.rec.last_error)
        self.s.mark(*backpropagate(node, reward))

    async def _rollout(self, child: Node) -> list[DialogueContext]:
        """Greedy rounds from `child` (Strategy, Supporter with the top strategy, Seeker), up to
        sim_max_rounds, stopping early at an end. Returns the contexts to judge: the child's own,
        then one per rolled-out supporter turn. Rolled-out turns are not tree nodes."""
        w = self.world
        cur = w.context(child)
        ctxs = [cur]
        for _ in range(self.cfg.sim_max_rounds):
            scores = await w.score(cur, child.path)
            if scores is None:
                break
            strat = greedy_strategy(scores)
            sup = await w.support(cur, strat, child.path)
            if sup is None:
                break
            cur = cur.extend(Utterance("supporter", sup, strat))
            seek = await w.seek(cur, child.path)
            if seek is None:
                ctxs.append(cur)
                break
            if seek.text or not seek.is_end:
                cur = cur.extend(Utterance("seeker", seek.text))
            ctxs.append(cur)
            if seek.is_end:
                break
        return ctxs

    async def iteration(self, it: int) -> None:
        """Select a leaf by PUCB, then run the rest of the iteration from it."""
        self.world.rec.start_iteration(it)
        self.world.rec.retry_round = self.s.consecutive_failures
        await self._iterate(select(self.s.root, self.cfg.c)[-1], it)

    async def _iterate(self, leaf: Node, it: int) -> None:
        """Extend the leaf if unexpanded; an end node is judged once and backpropagated;
        otherwise expand it, extend the highest-prior child, and judge it once (end) or roll
        out and backpropagate the mean of r + 1 judgements from the child."""
        if leaf.kind == "unexpanded":
            await self._extend(leaf, it)
        if leaf.is_end:
            await self._judge_and_backprop(leaf, [self.world.context(leaf)], it)
            return
        await self._expand(leaf, it)
        child = highest_prior(leaf.children)
        await self._extend(child, it)
        if child.is_end:
            await self._judge_and_backprop(child, [self.world.context(child)], it)
            return
        ctxs = await self._rollout(child)
        await self._judge_and_backprop(child, ctxs, it)

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

    async def _run_sequential(self) -> None:
        s = self.s
        while True:
            reason = stop_reason(s.iterations, s.end_count, self.rules)
            if reason is not None:
                s.status, s.stop_reason = "done", reason
                return
            it = s.iterations + 1
            self.world.rec.priority = -self.remaining_calls(it)
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
            if self.cfg.tree_parallel > 1:
                from escpro.mcts.parallel import run_parallel

                await run_parallel(self)
            else:
                await self._run_sequential()
            await self._flush()
        except EscproError:  # the store gave up (e.g. the file stayed locked): stop the build
            raise
        except Exception as exc:  # a bug or an unexpected backend error: fail this tree only
            log.exception("tree %s crashed", s.tree_id)
            s.status, s.error = "failed", f"{type(exc).__name__}: {exc}"
            s.dirty.clear()
            self.judgements.clear()
            self.world.rec.rows = []
            await self._commit(Delta(self.tree_row()))
        return s
