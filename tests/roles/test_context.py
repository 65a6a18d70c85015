"""Fitting prompts into a model's context: oldest turns dropped first, the judged/answered turn
never, the answer's room kept, and the count recorded in llm_calls.truncated_turns."""

import asyncio

import pytest

from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.backends.sim_server import SimServerThread
from escpro.roles.config import RolesConfig
from escpro.roles.context import (
    BYTES_PER_TOKEN,
    RoleWindow,
    estimate_tokens,
    fit_prompt,
    protected_tail,
)
from escpro.roles.prompts import PromptBuilder
from escpro.roles.roleset import build_roleset
from escpro.taxonomy import load_taxonomy

TAX = load_taxonomy("cso8")
PB = PromptBuilder(TAX)


def long_dialogue(turns: int, words: int = 60) -> DialogueContext:
    hist = []
    for i in range(turns):
        if i % 2 == 0:
            hist.append(Utterance("seeker", f"seeker turn {i}: " + "worried " * words))
        else:
            hist.append(Utterance("supporter", f"supporter turn {i}: " + "listening " * words, "Affirmation"))
    return DialogueContext("work", "exam stress", tuple(hist))


def test_protected_tail_keeps_the_judged_turn_and_the_reply():
    ctx = long_dialogue(6)  # ends with a supporter turn
    assert protected_tail("reward", ctx.history) == 1
    with_reply = ctx.extend(Utterance("seeker", "thanks"))
    assert protected_tail("reward", with_reply.history) == 2
    assert protected_tail("strategy", with_reply.history) == 1
    assert protected_tail("seeker", ()) == 0


def test_estimate_is_conservative_for_plain_text():
    p = PB.seeker(long_dialogue(4))
    assert estimate_tokens(p, "completions") >= len(p.transcript.encode()) / BYTES_PER_TOKEN


@pytest.mark.parametrize("role", ["seeker", "supporter", "strategy", "reward"])
def test_fit_drops_oldest_turns_only_as_needed(role):
    ctx = long_dialogue(12).extend(Utterance("seeker", "the newest seeker words"))
    if role == "seeker":
        ctx = ctx.extend(Utterance("supporter", "the newest supporter words", "Affirmation"))

    def render(c):
        return PB.supporter(c, "Affirmation") if role == "supporter" else getattr(PB, role)(c)

    full = estimate_tokens(render(ctx), "completions")
    window = RoleWindow(max_model_len=full // 2, max_tokens=64, api="completions")
    fit = asyncio.run(fit_prompt(role, window, ctx, render))
    assert fit.dropped > 0
    assert estimate_tokens(fit.prompt, "completions") <= full // 2 - 64
    kept = ctx.history[fit.dropped:]
    # the newest turns (what is answered or judged) are all in the prompt; the dropped ones not
    assert all(u.text in fit.prompt.transcript for u in kept)
    assert ctx.history[0].text not in fit.prompt.transcript
    # one turn fewer dropped would not have fit: only as many as needed
    more = render(DialogueContext(ctx.scene, ctx.situation, ctx.history[fit.dropped - 1:]))
    assert estimate_tokens(more, "completions") > full // 2 - 64 - 8


def test_fit_leaves_short_prompts_alone_and_shortens_the_answer_as_a_last_resort():
    ctx = long_dialogue(3)
    window = RoleWindow(max_model_len=100_000, max_tokens=64, api="completions")
    fit = asyncio.run(fit_prompt("strategy", window, ctx, PB.strategy))
    assert fit.dropped == 0 and fit.max_tokens is None
    # Only the protected turn is left and it is still too long for the full answer budget.
    last = DialogueContext("s", "t", (Utterance("seeker", "word " * 200),))
    need = estimate_tokens(PB.strategy(last), "completions")
    window = RoleWindow(max_model_len=need + 8 + 40, max_tokens=64, api="completions")
    fit = asyncio.run(fit_prompt("strategy", window, last, PB.strategy))
    assert fit.dropped == 0 and fit.max_tokens == 40


def test_roleset_fits_and_records_truncated_turns_over_http():
    """A sim server over HTTP with a configured max_model_len: the role fits its prompt (sim has
    no /tokenize, so the estimate decides) and says so on the result."""
    with SimServerThread() as srv:
        binding = {"backend": "openai", "base_url": srv.base_url, "model": "sim", "max_model_len": 700,
                   "max_tokens": 120, "temperature": 0.0}
        cfg = RolesConfig.model_validate({r: binding for r in ("seeker", "supporter", "strategy", "reward")})
        rs = build_roleset(cfg, TAX)
        ctx = long_dialogue(14)

        async def go():
            try:
                return await rs.judge(ctx), await rs.score_strategies(ctx.extend(Utterance("seeker", "ok")))
            finally:
                await rs.aclose()

        judged, scored = asyncio.run(go())
    assert judged.ok and scored.ok
    assert judged.result.truncated_turns > 0 and scored.result.truncated_turns > 0
    assert ctx.history[-1].text in judged.result.request.messages[-1]["content"]
    assert ctx.history[0].text not in judged.result.request.messages[-1]["content"]


def test_no_window_no_fitting():
    sim = {"backend": "sim"}  # the simulator: no context length known
    rs = build_roleset(RolesConfig.model_validate({r: sim for r in ("seeker", "supporter", "strategy", "reward")}), TAX)
    assert all(w is None for w in rs.windows.values())


def test_a_server_without_a_length_is_asked_once_then_left_alone():
    with SimServerThread() as srv:  # its /v1/models names no max_model_len
        binding = {"backend": "openai", "base_url": srv.base_url, "model": "sim"}
        cfg = RolesConfig.model_validate({r: binding for r in ("seeker", "supporter", "strategy", "reward")})
        rs = build_roleset(cfg, TAX)
        assert rs.windows["strategy"] is not None

        async def go():
            try:
                return [await rs.score_strategies(long_dialogue(3)) for _ in range(2)]
            finally:
                await rs.aclose()

        outs = asyncio.run(go())
    assert all(o.ok and o.result.truncated_turns == 0 for o in outs)
    assert rs.windows["strategy"] is None
