"""Prompt rendering from the editable templates in escpro/data/prompts/."""

import hashlib

import pytest

from escpro.errors import ConfigError
from escpro.roles.api import DialogueContext, Utterance
from escpro.roles.prompts import PromptBuilder, load_templates, render_transcript, template_record
from escpro.taxonomy import load_taxonomy

CTX = DialogueContext(
    "Breakups or Divorce",
    "After five years of marriage we separated.",
    (
        Utterance("seeker", "Hey, can you lend me an ear?"),
        Utterance("supporter", "Of course! What's been going on?", "Emotional Validation"),
        Utterance("seeker", "My husband and I decided to separate."),
    ),
)


@pytest.fixture(scope="module")
def builder():
    return PromptBuilder(load_taxonomy("cso8"))


def test_strategy_prompt_lists_every_strategy_and_history(builder):
    p = builder.strategy(CTX)
    user = p.messages[1]["content"]
    assert [m["role"] for m in p.messages] == ["system", "user"]
    for s in load_taxonomy("cso8").strategies:
        assert f"- {s.name}: {s.definition}" in user
    assert "Supporter (Emotional Validation): Of course!" in user
    assert "Seeker: My husband and I decided to separate." in user
    assert "from 1" in user and "to 10" in user
    assert p.schema["required"] == load_taxonomy("cso8").names
    assert p.transcript.endswith("JSON:")


def test_supporter_prompt_has_strategy_and_definition(builder):
    p = builder.supporter(CTX, "aff")  # abbreviation resolves to the canonical name
    user = p.messages[1]["content"]
    assert "Strategy to use: Affirmation" in user
    assert load_taxonomy("cso8").definition("Affirmation") in user
    assert "(Emotional Validation)" not in user  # the supporter is not shown past strategies
    assert p.schema is None and p.transcript.rstrip().endswith("Supporter:")
    with pytest.raises(KeyError):
        builder.supporter(CTX, "Hypnosis")


def test_seeker_prompt_scene_situation_marker(builder):
    ctx = CTX.extend(Utterance("supporter", "That must be hard.", "Empathetic Statements"))
    p = builder.seeker(ctx)
    system = p.messages[0]["content"]
    assert "Breakups or Divorce" in system and "five years of marriage" in system
    assert "[END]" in system
    assert p.transcript.endswith("Supporter: That must be hard.\nSeeker:")
    assert "[BYE]" in PromptBuilder(load_taxonomy("cso8"), end_marker="[BYE]").seeker(ctx).messages[0]["content"]


def test_reward_prompt_rubric_and_last_strategy(builder):
    ctx = CTX.extend(Utterance("supporter", "You are strong.", "Affirmation"))
    user = builder.reward(ctx).messages[1]["content"]
    assert "(strategy: Affirmation)" in user
    for key in ("empathy", "information", "humanoid", "strategy"):
        assert f"- {key}:" in user
    assert "no apparent difference from a human friend" in user  # Table 12, Humanoid 4


def test_template_record_and_custom_dir(tmp_path):
    rec = template_record()
    assert set(rec) == {"seeker.yaml", "supporter.yaml", "strategy.yaml", "reward.yaml"}
    for entry in rec.values():
        assert entry["sha256"] == hashlib.sha256(entry["text"].encode()).hexdigest()
    (tmp_path / "seeker.yaml").write_text(
        "system: Be ${scene}.\nuser: |-\n  ${history}\ntranscript: '${system} ${history} Seeker:'\n"
    )
    tpls = load_templates(tmp_path)
    assert tpls["seeker"].path == str(tmp_path / "seeker.yaml")
    assert tpls["reward"].path.endswith("escpro/data/prompts/reward.yaml")  # fallback
    p = PromptBuilder(load_taxonomy("cso8"), tpls).seeker(CTX)
    assert p.messages[0]["content"] == "Be Breakups or Divorce."
    assert template_record(tmp_path)["seeker.yaml"]["sha256"] != rec["seeker.yaml"]["sha256"]


@pytest.mark.parametrize(
    "body, match",
    [
        ("system: ${nope}\nuser: x\ntranscript: y\n", "unknown placeholder"),
        ("system: a\nuser: x\n", "transcript"),
        ("system: a\nuser: x\ntranscript: y\nextra: 1\n", "unknown key"),
        ("- a\n", "mapping"),
    ],
)
def test_bad_templates_are_config_errors(tmp_path, body, match):
    (tmp_path / "strategy.yaml").write_text(body)
    with pytest.raises(ConfigError, match=match):
        load_templates(tmp_path)


def test_generic_transcript():
    t = render_transcript([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert t == "S\n\nUser: U\n\nAssistant:"


def _all_text(p) -> str:
    return "\n".join(m["content"] for m in p.messages) + "\n" + (p.transcript or "")


def _each_role(b: PromptBuilder, ctx: DialogueContext) -> dict:
    after_sup = ctx.extend(Utterance("supporter", "That must be hard.", "Empathetic Statements"))
    return {"seeker": b.seeker(after_sup), "supporter": b.supporter(ctx, "Affirmation"),
            "strategy": b.strategy(ctx), "reward": b.reward(after_sup)}


def test_only_the_seeker_sees_scene_and_situation(builder):
    prompts = _each_role(builder, CTX)
    assert "Breakups or Divorce" in _all_text(prompts["seeker"])
    assert "five years of marriage" in _all_text(prompts["seeker"])
    for role in ("supporter", "strategy", "reward"):
        text = _all_text(prompts[role])
        assert "Breakups or Divorce" not in text and "five years of marriage" not in text, role
        assert "Background" not in text and "Scene:" not in text, role
        assert "My husband and I decided to separate." in text  # the dialogue itself is shown


def test_share_situation_switch_shows_background_to_every_role():
    b = PromptBuilder(load_taxonomy("cso8"), share_situation=True)
    for role, p in _each_role(b, CTX).items():
        assert "five years of marriage" in _all_text(p), role
        assert "Breakups or Divorce" in _all_text(p), role


def test_private_placeholders_in_other_roles_are_refused_unless_shared(tmp_path):
    (tmp_path / "supporter.yaml").write_text(
        "system: Help.\nuser: |-\n  ${situation}\n  ${history}\ntranscript: '${system} ${history}'\n"
    )
    tpls = load_templates(tmp_path)
    with pytest.raises(ConfigError, match=r"supporter.yaml: uses \$\{situation\}.*share_situation"):
        PromptBuilder(load_taxonomy("cso8"), tpls)
    b = PromptBuilder(load_taxonomy("cso8"), tpls, share_situation=True)
    assert "five years of marriage" in b.supporter(CTX, "Affirmation").messages[1]["content"]


def test_prompts_carry_the_authors_instructions(builder):
    prompts = _each_role(builder, CTX)
    strat = prompts["strategy"].messages[1]["content"]
    assert "do not use the same strategy in consecutive turns" in strat
    assert "Do not always choose Collaborative Planning." in strat
    assert "less than 25 words" in prompts["supporter"].messages[0]["content"]
    seeker = prompts["seeker"].messages[0]["content"]
    assert "less than 20 words" in seeker and 'Do not say "thanks"' in seeker
    # a taxonomy without Collaborative Planning is not told about it
    esconv = PromptBuilder(load_taxonomy("esconv8")).strategy(CTX).messages[1]["content"]
    assert "Collaborative Planning" not in esconv and "consecutive turns" in esconv


@pytest.mark.parametrize("text", [
    "plain", "$a and ${b}", "$$a costs $$5 {not a field} }{", "${a}${b}$a", "{$a}", "",
])
def test_format_string_renders_like_string_template(text):
    """Prompts render through str.format (faster); the result must equal Template.substitute."""
    from string import Template

    from escpro.roles.prompts import format_string

    values = {"a": "x{y}$z", "b": 7}
    assert format_string(text).format_map(values) == Template(text).substitute(values)


def test_shipped_templates_render_like_string_template(builder):

    from escpro.roles.prompts import format_string

    values = {k: f"<{k} {{braces}} $dollar>" for k in
              ("scene", "situation", "background", "history", "seeker", "supporter", "end_marker",
               "strategy", "definition", "strategies", "keys", "overused_note", "last_strategy",
               "system", "user")}
    values.update(score_min=0, score_max=10)
    for tpl in builder.templates.values():
        for t in (tpl.system, tpl.user, tpl.transcript):
            assert format_string(t.template).format_map(values) == t.substitute(values)
