"""The concrete RoleSet over the sim backend: values, retries, recorded failures, reuse, no hang."""

import asyncio

import pytest

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.config import RoleBinding, RolesConfig, SimSettings
from escpro.roles.roleset import build_roleset
from escpro.roles.scoring import turn_reward
from escpro.taxonomy import load_taxonomy

TAX = load_taxonomy("cso8")
CTX = DialogueContext("Work stress", "Too much work.", (Utterance("seeker", "I can't sleep."),))
CTX2 = CTX.extend(Utterance("supporter", "That sounds exhausting.", "Empathetic Statements"))


def cfg_with(**sim) -> RolesConfig:
    b = RoleBinding(backend="sim", sim=SimSettings(**sim))
    return RolesConfig(
        seeker=b,
        supporter=b,
        strategy=b.model_copy(update={"temperature": 0.0}),
        reward=b.model_copy(update={"temperature": 0.0}),
        max_retries=2,
        timeout_s=5,
    )


def run(coro):
    return asyncio.run(coro)


def test_all_four_roles_answer_and_share_one_instance():
    rs = build_roleset(cfg_with(), TAX, random_seed=3)
    assert rs.models["strategy"] is rs.models["seeker"]  # same engine, different sampling

    async def go():
        scores = await rs.score_strategies(CTX)
        reply = await rs.support(CTX, "Affirmation")
        seek = await rs.seek(CTX2)
        judge = await rs.judge(CTX2)
        return scores, reply, seek, judge

    scores, reply, seek, judge = run(go())
    assert list(scores.value) == TAX.names and all(1 <= v <= 10 for v in scores.value.values())
    assert reply.ok and reply.value and reply.result.status == "ok"
    assert seek.ok and isinstance(seek.value.is_end, bool)
    j = judge.value
    assert j.reward == pytest.approx(turn_reward(j.empathy, j.information, j.humanoid, j.strategy))
    p = rs.prior(scores.value)
    assert sum(p.values()) == pytest.approx(1.0)


def test_deterministic_for_same_seed():
    a = run(build_roleset(cfg_with(), TAX, random_seed=5).score_strategies(CTX)).value
    b = run(build_roleset(cfg_with(), TAX, random_seed=5).score_strategies(CTX)).value
    assert a == b


def test_invalid_answers_retried_then_recorded_failure():
    rs = build_roleset(cfg_with(invalid_rate=1.0), TAX)
    out = run(rs.judge(CTX2))
    assert out.value is None and not out.ok
    assert out.result.status == "invalid" and "truncated JSON" in out.result.error
    assert out.result.attempts == 3  # 1 + max_retries, then stop
    assert rs.stats["failed"] == 1 and rs.stats["attempts"] == 3


def test_retry_recovers_some_invalid_answers():
    rs = build_roleset(cfg_with(invalid_rate=0.5), TAX)

    async def go():
        ctxs = [DialogueContext("s", f"case {i}", (Utterance("seeker", f"hi {i}"),)) for i in range(60)]
        return await asyncio.gather(*(rs.score_strategies(c) for c in ctxs))

    outs = run(go())
    retried_ok = [o for o in outs if o.ok and o.result.attempts > 1]
    assert retried_ok, "a retry with a new seed should draw a valid answer"
    assert all(o.ok or o.result.attempts == 3 for o in outs)


def test_errors_and_timeouts_are_values_not_exceptions():
    rs = build_roleset(cfg_with(failure_rate=1.0), TAX)
    out = run(rs.seek(CTX2))
    assert out.result.status == "error" and out.result.attempts == 3
    slow = cfg_with(latency_ms=2000).model_copy(update={"timeout_s": 0.05, "max_retries": 1})
    rs = build_roleset(slow, TAX)
    out = run(asyncio.wait_for(rs.support(CTX, "Affirmation"), 2))
    assert out.result.status == "timeout" and out.result.attempts == 2


def test_cache_reuses_identical_requests_even_in_flight():
    rs = build_roleset(cfg_with(latency_ms=20), TAX)
    cache: dict = {}

    async def go():
        first = await asyncio.gather(*(rs.judge(CTX2, cache=cache) for _ in range(5)))
        again = await rs.judge(CTX2, cache=cache)
        return first, again

    first, again = run(go())
    assert rs.stats["calls"] == 1 and rs.stats["cached"] == 5
    assert again.result.cached and again.value == first[0].value
    assert sum(o.result.cached for o in first) == 4


def test_failures_are_not_cached():
    rs = build_roleset(cfg_with(invalid_rate=1.0), TAX)
    cache: dict = {}
    run(rs.judge(CTX2, cache=cache))
    assert cache == {}


def test_backend_override_and_template_record():
    cfg = RolesConfig(seeker=RoleBinding(backend="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    rs = build_roleset(cfg, TAX, backend_override="sim")
    assert {d["backend"] for d in rs.describe().values()} == {"sim"}
    assert set(rs.template_record()) == {"seeker.yaml", "supporter.yaml", "strategy.yaml", "reward.yaml"}
