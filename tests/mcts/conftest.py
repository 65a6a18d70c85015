"""A scripted RoleSet (a test double): its answers are simple functions of the dialogue, so the
trees it produces have values computable by hand. It honours the RoleSet contract (values or
failed Outcomes, per-tree answer cache) and logs every call it receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from escpro.dialogue import Utterance as Turn
from escpro.roles.api import DialogueContext, Judgement, Outcome, SeekerTurn
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.scoring import strategy_prior, turn_reward
from escpro.seeds.model import Dialogue
from escpro.taxonomy import Strategy, Taxonomy

TAX3 = Taxonomy("t3", (Strategy("A", "a"), Strategy("B", "b"), Strategy("C", "c")))

# Judge levels per strategy of the judged supporter turn: A -> R = 1, B -> R = 0, C -> R = -1.
LEVEL = {"A": 4, "B": 3, "C": 2}


def last_supporter(ctx: DialogueContext):
    return next(u for u in reversed(ctx.history) if u.speaker == "supporter")


class ScriptedRoleSet:
    def __init__(
        self,
        taxonomy: Taxonomy = TAX3,
        scores: Callable[[DialogueContext], dict[str, int]] | None = None,
        ends: Callable[[DialogueContext], bool] | None = None,
        fail: Callable[[str, DialogueContext, int], bool] | None = None,
    ):
        self.taxonomy = taxonomy
        self.scores_fn = scores or (lambda ctx: {"A": 5, "B": 3, "C": 1})
        self.ends_fn = ends or (lambda ctx: last_supporter(ctx).strategy == "C")
        self.fail_fn = fail or (lambda role, ctx, i: False)
        self.log: list[tuple[str, DialogueContext, str | None]] = []
        self.metas: list[dict] = []  # the meta (+ priority, retry_round) of every call sent, in order
        self.raw_metas: list[dict] = []  # the meta alone
        self.sent = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.iters_in_flight: dict[int, int] = {}
        self.max_iters_in_flight = 0

    def prior(self, scores):
        return strategy_prior(scores, 5.0)

    async def _call(self, role, ctx, extra, make, cache, meta=None, priority=0.0, retry_round=0):
        msgs = tuple({"role": u.speaker, "content": f"{u.strategy}|{u.text}"} for u in ctx.history)
        req = RoleRequest(role, msgs + ({"role": "x", "content": str(extra)},))
        key = req.key("scripted")
        if cache is not None and key in cache:
            value, res = cache[key]
            return Outcome(value, RoleResult(req, "ok", text=res.text, value=value, cached=True,
                                             backend="scripted", model="scripted"))
        self.sent += 1
        idx = len(self.log)
        self.log.append((role, ctx, extra))
        self.raw_metas.append(dict(meta or {}))
        self.metas.append({**(meta or {}), "priority": priority, "retry_round": retry_round})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        it = (meta or {}).get("iteration", -1)
        self.iters_in_flight[it] = self.iters_in_flight.get(it, 0) + 1
        self.max_iters_in_flight = max(self.max_iters_in_flight, len(self.iters_in_flight))
        await asyncio.sleep(0)
        self.in_flight -= 1
        self.iters_in_flight[it] -= 1
        if not self.iters_in_flight[it]:
            del self.iters_in_flight[it]
        if self.fail_fn(role, ctx, idx):
            return Outcome(None, RoleResult(req, "error", error="scripted failure",
                                            backend="scripted", model="scripted"))
        value = make()
        res = RoleResult(req, "ok", text=str(value), value=value, prompt_tokens=10,
                         completion_tokens=2, backend="scripted", model="scripted")
        if cache is not None:
            cache[key] = (value, res)
        return Outcome(value, res)

    async def score_strategies(self, ctx, *, meta=None, cache=None, priority=0.0, retry_round=0):
        return await self._call("strategy", ctx, None, lambda: dict(self.scores_fn(ctx)), cache, meta, priority, retry_round)

    async def support(self, ctx, strategy, *, meta=None, cache=None, priority=0.0, retry_round=0):
        n = sum(1 for u in ctx.history if u.speaker == "supporter")
        return await self._call("supporter", ctx, strategy, lambda: f"sup{n}-{strategy}", cache, meta, priority, retry_round)

    async def seek(self, ctx, *, meta=None, cache=None, priority=0.0, retry_round=0):
        def make():
            end = self.ends_fn(ctx)
            return SeekerTurn("" if end else f"seek{len(ctx.history)}", end)

        return await self._call("seeker", ctx, None, make, cache, meta, priority, retry_round)

    async def judge(self, ctx, *, meta=None, cache=None, priority=0.0, retry_round=0):
        def make():
            lv = LEVEL[last_supporter(ctx).strategy]
            return Judgement(lv, lv, lv, lv, turn_reward(lv, lv, lv, lv))

        return await self._call("reward", ctx, None, make, cache, meta, priority, retry_round)

    async def aclose(self):
        pass


def gold_dialogue(index: int = 0, strategies=("A", "B")) -> Dialogue:
    turns = [Turn("supporter", "hello there", None, True), Turn("seeker", "s0")]
    for k, s in enumerate(strategies):
        turns.append(Turn("supporter", f"g{k}", s))
        turns.append(Turn("seeker", f"s{k + 1}"))
    return Dialogue(f"seed-{index}", index, "scene", "situation", tuple(turns))


@pytest.fixture
def scripted():
    return ScriptedRoleSet


@pytest.fixture
def make_dialogue():
    return gold_dialogue
