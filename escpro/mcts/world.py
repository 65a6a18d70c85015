"""The "world" the search acts in: one seed dialogue and the four roles (llm-reasoners' split).

The search (search.py) knows nodes, values and the iteration recipe and reaches this module only
through escpro.mcts.protocol.World; this module knows what a node means as dialogue (its
context, escpro.dialogue.node_turns), how the gold path is laid out from a seed, and how a role
call is made and recorded. Every call becomes one llm_calls row with a deterministic id, so a
replayed iteration after a crash writes exactly the rows the lost one would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from escpro.dialogue import Utterance, gold_split, node_turns
from escpro.mcts.calls import CallRecorder
from escpro.mcts.protocol import Action, Extension, GoldPath, GoldStep, IterationFailed
from escpro.mcts.tree import Node, gold_child_priors, greedy_strategy
from escpro.roles.api import DialogueContext, Judgement, Outcome, RoleSet, SeekerTurn
from escpro.seeds.model import Dialogue


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


@dataclass(frozen=True)
class RolledState:
    """A state of a rollout, with its judgement already on its way (DialogueWorld.roll_out)."""

    context: DialogueContext
    judgement: asyncio.Future


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

    async def roll_out(self, node: Node, max_rounds: int) -> list[RolledState]:
        """Greedy rounds from `node` (Strategy, Supporter with the top strategy, Seeker), up to
        max_rounds, stopping early at an end. Returns the states to judge: the node's own, then
        one per rolled-out supporter turn. Rolled-out turns are not tree nodes.

        Each state's judgement starts as soon as the dialogue it rates is known: the judge sees
        the dialogue up to the state's supporter turn (`judged_context`), so it need not wait
        for the seeker's answer, and the last judgement runs beside the last Seeker call instead
        of after it. Same requests, same answers as judging every state at the end where a call
        is sampled by its own seed (not by when it is sent: sim, vLLM, llama.cpp; docs/build.md);
        one step fewer per rollout."""
        cur = self.context(node)
        judging = [self._judge_soon(cur, node.path)]  # one per state, in state order
        states = [RolledState(cur, judging[0])]
        try:
            for _ in range(max_rounds):
                scores = await self.score(cur, node.path)
                if scores is None:
                    break
                strat = greedy_strategy(scores)
                sup = await self.support(cur, strat, node.path)
                if sup is None:
                    break
                cur = cur.extend(Utterance("supporter", sup, strat))
                # Judged whatever the seeker says next: a failed Seeker call still leaves this
                # state (without its reply), an end without words too.
                judging.append(self._judge_soon(cur, node.path))
                seek = await self.seek(cur, node.path)
                if seek is not None and (seek.text or not seek.is_end):
                    cur = cur.extend(Utterance("seeker", seek.text))
                states.append(RolledState(cur, judging[-1]))
                if seek is None or seek.is_end:
                    break
        except BaseException:
            for task in judging:
                if not task.cancel() and not task.cancelled():
                    task.exception()  # a finished one: its outcome is not wanted now
            raise
        return states

    async def judge(self, node: Node, states: Sequence[Any] | None) -> list[Judgement | None]:
        """One judgement per state: a rollout's states already carry theirs (roll_out)."""
        if states is None:
            return await self.judge_many([self.context(node)], node.path)
        if all(isinstance(st, RolledState) for st in states):
            outs = await asyncio.gather(*(st.judgement for st in states))
            failed = [o for o in outs if o.value is None]
            if failed:  # the reason, as when judged together: the last failed one in state order,
                self.rec.note_error(failed[-1])  # not whichever call happened to fail last
            return [o.value for o in outs]
        return await self.judge_many(list(states), node.path)  # plain contexts (not from roll_out)

    def _judge_soon(self, ctx: DialogueContext, path) -> asyncio.Task:
        """Start the judgement of `ctx`; its call id is taken now, before the Seeker call it
        runs beside, so ids stay deterministic (a replayed iteration numbers its calls alike)."""
        meta, kw = self._call(path)
        return asyncio.ensure_future(self._judged(judged_context(ctx), meta, kw))

    async def _judged(self, ctx: DialogueContext, meta: dict, kw: dict) -> Outcome:
        out = await self.roles.judge(ctx, **kw)
        self.rec.record(meta, out)
        return out

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
