"""The openai backend against the sim server over real HTTP on loopback: faults, bounded retries,
no hang. Short timeouts keep every case under a few seconds."""

import asyncio
import json
import time

import pytest

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.backends.openai import OpenAIModel, build_body
from escpro.roles.backends.sim_server import FaultSettings, SimServerThread
from escpro.roles.base import RoleRequest, Sampling
from escpro.roles.config import RoleBinding, RolesConfig, SimSettings
from escpro.roles.endpoints import write_endpoints
from escpro.roles.roleset import build_roleset
from escpro.roles.schemas import reward_schema
from escpro.taxonomy import load_taxonomy

TAX = load_taxonomy("cso8")
CTX = DialogueContext("Work stress", "Too much work.", (Utterance("seeker", "I can't sleep."),))
CTX2 = CTX.extend(Utterance("supporter", "That sounds exhausting.", "Empathetic Statements"))
REQ = RoleRequest("reward", ({"role": "user", "content": "rate"},), reward_schema(), Sampling(max_tokens=64))


def model(srv, **kw) -> OpenAIModel:
    opts = dict(timeout_s=1.0, retries=2, backoff_s=0.01)
    opts.update(kw)
    return OpenAIModel(srv.base_url, "sim", **opts)


def gen(m: OpenAIModel, reqs):
    async def go():
        try:
            return await m.generate(reqs)
        finally:
            await m.aclose()

    return asyncio.run(go())


def test_body_uses_structured_outputs_never_guided():
    b = build_body(REQ, "m", api="chat", structured="vllm")
    assert b["structured_outputs"] == {"json": reward_schema()}
    assert not any(k.startswith("guided_") for k in b)
    b = build_body(REQ, "m", api="chat", structured="response_format")
    assert b["response_format"]["type"] == "json_schema"
    assert b["response_format"]["json_schema"]["schema"]["additionalProperties"] is False
    assert "structured_outputs" not in build_body(REQ, "m", api="chat", structured="none")
    req = RoleRequest("seeker", ({"role": "user", "content": "x"},), prompt="T:")
    assert build_body(req, "m", api="completions", structured="vllm")["prompt"] == "T:"


@pytest.mark.parametrize("structured", ["vllm", "response_format"])
def test_all_roles_over_http_with_role_header(structured):
    with SimServerThread() as srv:
        b = RoleBinding(backend="openai", model="sim", base_url=srv.base_url, structured=structured)
        rs = build_roleset(RolesConfig(seeker=b, supporter=b, strategy=b, reward=b), TAX)

        async def go():
            try:
                return await asyncio.gather(
                    rs.score_strategies(CTX), rs.support(CTX, "Affirmation"), rs.seek(CTX2), rs.judge(CTX2)
                )
            finally:
                await rs.aclose()

        outs = asyncio.run(go())
        assert all(o.ok for o in outs), [o.result.error for o in outs]
        assert list(outs[0].value) == TAX.names
        assert outs[3].result.prompt_tokens > 0 and outs[3].result.latency_ms > 0
        assert dict(srv.stats.requests) == {"strategy": 1, "supporter": 1, "seeker": 1, "reward": 1}
        assert srv.stats.schema_requests == 2 and srv.stats.guided_keys_seen == 0


def test_completions_api_sends_transcript():
    with SimServerThread() as srv:
        b = RoleBinding(backend="openai", model="sim", base_url=srv.base_url, api="completions")
        rs = build_roleset(RolesConfig(seeker=b, supporter=b, strategy=b, reward=b), TAX)
        out = asyncio.run(rs.judge(CTX2))
        asyncio.run(rs.aclose())
        assert out.ok and out.value.reward <= 1.0


@pytest.mark.parametrize("fault", ["error", "malformed", "truncated"])
def test_persistent_fault_is_retried_a_bounded_number_of_times(fault):
    with SimServerThread(faults=FaultSettings(**{f"{fault}_rate": 1.0})) as srv:
        res = gen(model(srv), [REQ])[0]
        assert res.status == "error" and res.attempts == 3
        assert srv.stats.faults[fault] == 3  # 1 + retries, then a recorded failure
        if fault == "error":
            assert "HTTP 500" in res.error
        elif fault == "malformed":
            assert "malformed response body" in res.error
        else:
            assert "truncated" in res.error or "malformed" in res.error


def test_intermittent_faults_recover():
    faults = FaultSettings(error_rate=0.2, malformed_rate=0.1, truncated_rate=0.1, seed=3)
    with SimServerThread(faults=faults) as srv:
        reqs = [RoleRequest("reward", ({"role": "user", "content": f"rate {i}"},), reward_schema()) for i in range(80)]
        results = gen(model(srv, retries=4), reqs)
        assert sum(r.ok for r in results) >= 78
        assert any(r.attempts > 1 for r in results)
        assert sum(srv.stats.faults.values()) > 0


def test_hang_becomes_timeout_quickly():
    with SimServerThread(faults=FaultSettings(hang_rate=1.0, hang_s=30)) as srv:
        t0 = time.monotonic()
        res = gen(model(srv, timeout_s=0.3, retries=1), [REQ])[0]
        assert res.status == "timeout" and res.attempts == 2
        assert time.monotonic() - t0 < 5


def test_4xx_is_not_retried_and_dead_server_is_an_error():
    with SimServerThread(api_key="secret") as srv:
        res = gen(model(srv), [REQ])[0]
        assert res.status == "error" and "HTTP 401" in res.error and res.attempts == 1
        ok = gen(model(srv, api_key="secret"), [REQ])[0]
        assert ok.ok
        url = srv.base_url
    res = asyncio.run(OpenAIModel(url, "sim", timeout_s=0.5, retries=1, backoff_s=0.01).generate([REQ]))[0]
    assert res.status == "error" and res.attempts == 2


def test_schema_invalid_content_is_retried_by_the_roleset():
    with SimServerThread(SimSettings(invalid_rate=1.0)) as srv:
        b = RoleBinding(backend="openai", model="sim", base_url=srv.base_url)
        cfg = RolesConfig(seeker=b, supporter=b, strategy=b, reward=b, max_retries=2)
        rs = build_roleset(cfg, TAX)
        out = asyncio.run(rs.judge(CTX2))
        asyncio.run(rs.aclose())
        assert out.value is None and out.result.status == "invalid" and out.result.attempts == 3
        assert srv.stats.requests["reward"] == 3


def test_endpoints_file_points_roles_at_the_server(tmp_path):
    with SimServerThread() as srv:
        path = tmp_path / "endpoints.json"
        write_endpoints(path, {r: {"base_url": srv.base_url, "model": "sim", "api_key_env": None}
                               for r in ("strategy", "reward")})
        sim = RoleBinding(backend="sim")
        rs = build_roleset(RolesConfig(seeker=sim, supporter=sim), TAX, endpoints=path)
        assert rs.describe()["reward"]["backend"] == "openai"
        assert rs.describe()["seeker"]["backend"] == "sim"
        out = asyncio.run(rs.score_strategies(CTX))
        asyncio.run(rs.aclose())
        assert out.ok and srv.stats.requests["strategy"] == 1
    json.loads(path.read_text())


def test_per_endpoint_concurrency_limit_is_shared_by_roles():
    with SimServerThread(SimSettings(latency_ms=50, capacity=256)) as srv:
        b = RoleBinding(backend="openai", model="sim", base_url=srv.base_url, concurrency=4)
        strategy = b.model_copy(update={"structured": "response_format"})  # another instance, same endpoint
        rs = build_roleset(RolesConfig(seeker=b, supporter=b, strategy=strategy, reward=strategy), TAX)
        assert rs.models["seeker"] is not rs.models["strategy"]

        async def go():
            try:
                ctxs = [DialogueContext("s", f"c{i}", (Utterance("seeker", "hi"),)) for i in range(12)]
                return await asyncio.gather(*(rs.support(c, "Affirmation") for c in ctxs),
                                            *(rs.score_strategies(c) for c in ctxs))
            finally:
                await rs.aclose()

        outs = asyncio.run(go())
        assert all(o.ok for o in outs)
        assert srv.stats.max_in_flight == 4
