"""The "world" the search acts in: one seed dialogue and the four roles (llm-reasoners' split).

The search (search.py) knows nodes, values and the iteration recipe; this module knows what a
node means as dialogue (its context), how the gold path is laid out from a seed, and how a role
call is made and recorded. Every call becomes one llm_calls row with a deterministic id, so a
replayed iteration after a crash writes exactly the rows the lost one would have.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass
from typing import Any

from escpro.mcts.tree import Node
from escpro.roles.api import DialogueContext, Judgement, Outcome, RoleSet, SeekerTurn, Utterance
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


def _utt(turn) -> Utterance:
    return Utterance(turn.speaker, turn.text, turn.strategy if turn.speaker == "supporter" else None)


def gold_layout(d: Dialogue, strategy_names: list[str]) -> GoldLayout:
    """Split a seed into the root context and its gold supporter turns (with what follows each).

    Everything before the first gold supporter turn (greeting, first seeker turn) is the root's
    context; context-only turns never become gold nodes but stay in the dialogue.
    """
    gold = d.gold_supporter_indices
    if not gold:
        raise BadSeed("seed has no strategy-labelled supporter turn")
    root_hist = tuple(_utt(t) for t in d.turns[: gold[0]])
    if not any(u.speaker == "seeker" for u in root_hist):
        raise BadSeed("seed has no seeker turn before its first gold supporter turn")
    turns = []
    for k, gi in enumerate(gold):
        t = d.turns[gi]
        if t.strategy not in strategy_names:
            raise BadSeed(f"gold turn {gi}: strategy {t.strategy!r} is not in the taxonomy")
        end = gold[k + 1] if k + 1 < len(gold) else len(d.turns)
        tail = tuple(_utt(x) for x in d.turns[gi + 1 : end])
        turns.append(GoldTurn(t.strategy, t.text, tail))
    return GoldLayout(root_hist, tuple(turns))


def node_utterances(node: Node, gold_tails: dict[tuple[int, ...], tuple[Utterance, ...]]):
    """What a node adds to the dialogue: its supporter turn, then the seeker's reply (gold nodes:
    the seed's turns up to the next gold turn). An end node whose seeker only ended adds no
    seeker utterance."""
    sup = Utterance("supporter", node.supporter_text or "", node.strategy)
    if node.path in gold_tails:
        return (sup, *gold_tails[node.path])
    if node.seeker_text or not node.is_end:
        return (sup, Utterance("seeker", node.seeker_text or ""))
    return (sup,)


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
            "priority": self.priority,
            "retry_round": self.retry_round,
        }

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
    """One seed dialogue + the role set, seen through node paths."""

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

    # ---- role calls (each one recorded) ----
    async def score(self, ctx: DialogueContext, path) -> dict[str, int] | None:
        meta = self.rec.next_meta(path)
        out = await self.roles.score_strategies(ctx, meta=meta, cache=self.cache)
        self.rec.record(meta, out)
        return out.value

    async def support(self, ctx: DialogueContext, strategy: str, path) -> str | None:
        meta = self.rec.next_meta(path)
        out = await self.roles.support(ctx, strategy, meta=meta, cache=self.cache)
        self.rec.record(meta, out)
        return out.value

    async def seek(self, ctx: DialogueContext, path) -> SeekerTurn | None:
        meta = self.rec.next_meta(path)
        out = await self.roles.seek(ctx, meta=meta, cache=self.cache)
        self.rec.record(meta, out)
        return out.value

    async def judge_many(self, ctxs: list[DialogueContext], path) -> list[Judgement | None]:
        """Independent judgements issued together (one batch for the backend; their contexts
        share a prefix, which a prefix cache reuses). Each context is judged as
        `judged_context` cuts it: up to and including the supporter turn being rated."""
        ctxs = [judged_context(c) for c in ctxs]
        metas = [self.rec.next_meta(path) for _ in ctxs]
        outs = await asyncio.gather(
            *(
                self.roles.judge(c, meta=m, cache=self.cache)
                for c, m in zip(ctxs, metas, strict=True)
            )
        )
        for m, o in zip(metas, outs, strict=True):
            self.rec.record(m, o)
        return [o.value for o in outs]

    async def score_many(self, ctxs: list[DialogueContext], paths: list) -> list[dict | None]:
        metas = [self.rec.next_meta(p) for p in paths]
        outs = await asyncio.gather(
            *(
                self.roles.score_strategies(c, meta=m, cache=self.cache)
                for c, m in zip(ctxs, metas, strict=True)
            )
        )
        for m, o in zip(metas, outs, strict=True):
            self.rec.record(m, o)
        return [o.value for o in outs]
