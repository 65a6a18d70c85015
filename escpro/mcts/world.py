"""The "world" the search acts in: one seed dialogue and the four roles (llm-reasoners' split).

The search (search.py) knows nodes, values and the iteration recipe and reaches this module only
through escpro.mcts.protocol.World; this module knows what a node means as dialogue (its
context, escpro.dialogue.node_turns), how the gold path is laid out from a seed, and how a role
call is made and recorded. Every call becomes one llm_calls row with a deterministic id, so a
replayed iteration after a crash writes exactly the rows the lost one would have.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from escpro.dialogue import Utterance, gold_split, node_turns
from escpro.mcts.protocol import Action, Extension, GoldPath, GoldStep, IterationFailed
from escpro.mcts.tree import Node, gold_child_priors, greedy_strategy
from escpro.roles.api import DialogueContext, Judgement, Outcome, RoleSet, SeekerTurn
from escpro.seeds.model import Dialogue
from escpro.store.ids import call_id, node_id


class BadSeed(ValueError):
    """A seed the search cannot start from (no gold supporter turn, no seeker turn before it)."""


@dataclass(frozen=True)
class GoldTurn:
    strategy: str
    text: str
    tail: tuple[Utterance, ...]  # the turns after this supporter turn, up to the next gold one


@dataclass(frozen=True)
class GoldLayout:
    root_history: tuple[Utterance, ...]
    turns: tuple[GoldTurn, ...]

    @property
    def root_seeker_text(self) -> str:
        return next(u.text for u in reversed(self.root_history) if u.speaker == "seeker")


def gold_layout(d: Dialogue, strategy_names: list[str]) -> GoldLayout:
    """Split a seed into the root context and its gold supporter turns (with what follows each),
    as escpro.dialogue.gold_split does for extraction; refuses a seed the search cannot start
    from. Everything before the first gold supporter turn (greeting, first seeker turn) is the
    root's context; context-only turns never become gold nodes but stay in the dialogue."""
    split = gold_split(d.turns)
    if split is None:
        raise BadSeed("seed has no strategy-labelled supporter turn")
    if not any(u.speaker == "seeker" for u in split.root_history):
        raise BadSeed("seed has no seeker turn before its first gold supporter turn")
    gold = d.gold_supporter_indices
    turns = []
    for gi, t, tail in zip(gold, split.turns, split.tails, strict=True):
        if t.strategy not in strategy_names:
            raise BadSeed(f"gold turn {gi}: strategy {t.strategy!r} is not in the taxonomy")
        turns.append(GoldTurn(t.strategy, t.text, tail))
    return GoldLayout(split.root_history, tuple(turns))


def node_utterances(node: Node, gold_tails: dict[tuple[int, ...], tuple[Utterance, ...]]):
    """What a search node adds to the dialogue (escpro.dialogue.node_turns)."""
    return node_turns(node.strategy, node.supporter_text, node.seeker_text, node.is_end,
                      gold_tails.get(node.path))


def judged_context(ctx: DialogueContext) -> DialogueContext:
    """The dialogue a Reward judgement rates: `ctx` cut after its last supporter turn, without
    the supporter turns before the first seeker turn (an opening greeting).

    The paper's Reward LLM rates "the conversation history up to the last Supporter turn"
    (Appendix A), and the authors' code (run.py eval_all) judges `history[1:][:i]`: it drops the
    opening greeting and ends each judged dialogue with the supporter turn being rated. A seeker's
    reaction to that turn (or the closing words of an end node) would let the judge rate the
    reaction rather than the turn, so it is never shown.
    """
    hist = ctx.history
    last = max((i for i, u in enumerate(hist) if u.speaker == "supporter"), default=-1)
    first_seeker = next((i for i, u in enumerate(hist) if u.speaker == "seeker"), len(hist))
    kept = tuple(u for i, u in enumerate(hist[: last + 1]) if i >= first_seeker or u.speaker != "supporter")
    if kept == hist:
        return ctx
    return DialogueContext(ctx.scene, ctx.situation, kept)


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

    def record(self, meta: dict[str, Any], outcome: Outcome) -> None:
        r = outcome.result
        req = r.request
        if r.status != "ok" or outcome.value is None:
            self.failures += 1
            self._cur.last_error = f"{req.role}: {r.status}: {r.error or 'no value'}"
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


class DialogueWorld:
    """One seed dialogue + the role set, seen through node paths (an escpro.mcts.protocol.World).

    Each role call carries a typed priority (escpro.roles.base.RoleRequest.priority) and the
    tree's retry round; its meta (call id, tree, node, iteration) only labels the llm_calls row.
    """

    def __init__(
        self,
        roles: RoleSet,
        dialogue: Dialogue,
        layout: GoldLayout,
        recorder: CallRecorder,
        cache: dict | None,
    ):
        self.roles = roles
        self.dialogue = dialogue
        self.layout = layout
        self.rec = recorder
        self.cache = cache
        self.gold_tails: dict[tuple[int, ...], tuple[Utterance, ...]] = {}
        self._ctx_cache: dict[tuple[int, ...], DialogueContext] = {}

    @property
    def names(self) -> list[str]:
        return list(self.roles.taxonomy.names)

    # ---- the World protocol: call bookkeeping ----
    @property
    def priority(self) -> float | None:
        return self.rec.priority

    @priority.setter
    def priority(self, value: float | None) -> None:
        self.rec.priority = value

    @property
    def last_error(self) -> str | None:
        return self.rec.last_error

    def start_iteration(self, iteration: int, retry_round: int = 0) -> None:
        self.rec.start_iteration(iteration)
        self.rec.retry_round = retry_round

    def drain_calls(self) -> list[dict]:
        rows, self.rec.rows = self.rec.rows, []
        return rows

    # ---- dialogue ----
    def root_context(self) -> DialogueContext:
        return DialogueContext(self.dialogue.scene, self.dialogue.situation, self.layout.root_history)

    def context(self, node: Node) -> DialogueContext:
        """The dialogue up to and including `node`'s own turns (its texts never change once
        set, so contexts are memoised per path)."""
        hit = self._ctx_cache.get(node.path)
        if hit is not None:
            return hit
        if node.parent is None:
            ctx = self.root_context()
        else:
            ctx = self.context(node.parent).extend(*node_utterances(node, self.gold_tails))
        if node.parent is None or node.kind in ("expanded", "end"):
            self._ctx_cache[node.path] = ctx
        return ctx

    # ---- the World protocol: steps ----
    async def gold_path(self, retries: int, unscored_scale: float, unscored_prior: float) -> GoldPath:
        """The seed as the tree's first path. At each gold turn the Strategy role scores the
        strategies on the FULL history (all turns at once: their contexts are known from the
        seed); failed turns are asked again, up to `retries` rounds in all."""
        lay, names = self.layout, self.names
        ctxs: list[DialogueContext] = []
        ctx = self.root_context()
        for gt in lay.turns:
            ctxs.append(ctx)
            ctx = ctx.extend(Utterance("supporter", gt.text, gt.strategy), *gt.tail)
        paths: list[tuple[int, ...]] = []
        path: tuple[int, ...] = ()
        for gt in lay.turns:
            paths.append(path)
            path = path + (names.index(gt.strategy),)
        scores_list = await self.score_many(ctxs, paths)
        # All of it is iteration 0 with distinct call ids.
        for rnd in range(1, retries):
            failed = [i for i, sc in enumerate(scores_list) if sc is None]
            if not failed:
                break
            self.rec.retry_round = rnd
            again = await self.score_many([ctxs[i] for i in failed], [paths[i] for i in failed])
            for i, sc in zip(failed, again, strict=True):
                scores_list[i] = sc
        self.rec.retry_round = 0
        failed = [i for i, sc in enumerate(scores_list) if sc is None]
        if failed:
            raise IterationFailed(
                f"gold initialisation: strategy scoring failed at gold turn {failed[0]}: "
                f"{self.rec.last_error}"
            )
        steps = []
        for gt, scores, parent in zip(lay.turns, scores_list, paths, strict=True):
            priors = gold_child_priors(
                names, scores, gt.strategy, self.roles.prior, unscored_scale, unscored_prior
            )
            acts = tuple(Action(names.index(st), st, p, scores.get(st)) for st, p in priors.items())
            gold = next(a for a in acts if a.label == gt.strategy)
            self.gold_tails[parent + (gold.index,)] = gt.tail
            seeker = "\n".join(u.text for u in gt.tail if u.speaker == "seeker")
            steps.append(GoldStep(gold, gt.text, seeker, acts))
        return GoldPath(lay.root_seeker_text, tuple(steps))

    async def extend(self, node: Node) -> Extension | None:
        """Supporter (with the node's strategy), then Seeker."""
        ctx = self.context(node.parent)
        sup = await self.support(ctx, node.strategy, node.path)
        if sup is None:
            return None
        seek = await self.seek(ctx.extend(Utterance("supporter", sup, node.strategy)), node.path)
        if seek is None:
            return None
        return Extension(sup, seek.text, bool(seek.is_end))

    async def expand(self, node: Node) -> list[Action] | None:
        """One Strategy call scores every strategy; the priors are softmax(score / T)."""
        scores = await self.score(self.context(node), node.path)
        if scores is None:
            return None
        names = self.names
        return [Action(names.index(st), st, p, scores.get(st))
                for st, p in self.roles.prior(scores).items()]

    async def roll_out(self, node: Node, max_rounds: int) -> list[DialogueContext]:
        """Greedy rounds from `node` (Strategy, Supporter with the top strategy, Seeker), up to
        max_rounds, stopping early at an end. Returns the contexts to judge: the node's own,
        then one per rolled-out supporter turn. Rolled-out turns are not tree nodes."""
        cur = self.context(node)
        ctxs = [cur]
        for _ in range(max_rounds):
            scores = await self.score(cur, node.path)
            if scores is None:
                break
            strat = greedy_strategy(scores)
            sup = await self.support(cur, strat, node.path)
            if sup is None:
                break
            cur = cur.extend(Utterance("supporter", sup, strat))
            seek = await self.seek(cur, node.path)
            if seek is None:
                ctxs.append(cur)
                break
            if seek.text or not seek.is_end:
                cur = cur.extend(Utterance("seeker", seek.text))
            ctxs.append(cur)
            if seek.is_end:
                break
        return ctxs

    async def judge(self, node: Node, states: Sequence[DialogueContext] | None) -> list[Judgement | None]:
        return await self.judge_many(list(states) if states is not None else [self.context(node)], node.path)

    # ---- role calls (each one recorded) ----
    def _call(self, path) -> tuple[dict[str, Any], dict[str, Any]]:
        """(meta for the llm_calls row, the call's typed keyword arguments)."""
        meta = self.rec.next_meta(path)
        return meta, {"meta": meta, "cache": self.cache, "priority": self.rec.call_priority(),
                      "retry_round": self.rec.retry_round}

    async def score(self, ctx: DialogueContext, path) -> dict[str, int] | None:
        meta, kw = self._call(path)
        out = await self.roles.score_strategies(ctx, **kw)
        self.rec.record(meta, out)
        return out.value

    async def support(self, ctx: DialogueContext, strategy: str, path) -> str | None:
        meta, kw = self._call(path)
        out = await self.roles.support(ctx, strategy, **kw)
        self.rec.record(meta, out)
        return out.value

    async def seek(self, ctx: DialogueContext, path) -> SeekerTurn | None:
        meta, kw = self._call(path)
        out = await self.roles.seek(ctx, **kw)
        self.rec.record(meta, out)
        return out.value

    async def judge_many(self, ctxs: list[DialogueContext], path) -> list[Judgement | None]:
        """Independent judgements issued together (one batch for the backend; their contexts
        share a prefix, which a prefix cache reuses). Each context is judged as
        `judged_context` cuts it: up to and including the supporter turn being rated."""
        ctxs = [judged_context(c) for c in ctxs]
        calls = [self._call(path) for _ in ctxs]
        outs = await asyncio.gather(
            *(self.roles.judge(c, **kw) for c, (_, kw) in zip(ctxs, calls, strict=True))
        )
        for (m, _), o in zip(calls, outs, strict=True):
            self.rec.record(m, o)
        return [o.value for o in outs]

    async def score_many(self, ctxs: list[DialogueContext], paths: list) -> list[dict | None]:
        calls = [self._call(p) for p in paths]
        outs = await asyncio.gather(
            *(self.roles.score_strategies(c, **kw) for c, (_, kw) in zip(ctxs, calls, strict=True))
        )
        for (m, _), o in zip(calls, outs, strict=True):
            self.rec.record(m, o)
        return [o.value for o in outs]
