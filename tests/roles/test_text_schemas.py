"""Cleaning of role text and validation of structured answers."""

import pytest

from escpro.roles.schemas import (
    REWARD_KEYS,
    SchemaError,
    parse_json_answer,
    reward_schema,
    strategy_schema,
)
from escpro.roles.text import clean_seeker, clean_supporter, has_end_marker
from escpro.taxonomy import load_taxonomy


def test_strategy_schema_is_enum_without_extras():
    names = load_taxonomy("cso8").names
    s = strategy_schema(names)
    assert s["additionalProperties"] is False
    assert s["required"] == names
    for name in names:
        assert s["properties"][name] == {"type": "integer", "enum": list(range(1, 11))}
        assert "minimum" not in s["properties"][name]
    r = reward_schema()
    assert r["required"] == list(REWARD_KEYS)
    assert r["properties"]["empathy"]["enum"] == [0, 1, 2, 3, 4]


def test_parse_valid_and_fenced():
    r = reward_schema()
    ok = '{"empathy": 3, "information": 2, "humanoid": 4, "strategy": 0}'
    assert parse_json_answer(ok, r)["humanoid"] == 4
    assert parse_json_answer("```json\n" + ok + "\n```", r)["strategy"] == 0


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"empathy": 3, "information": 2, "humanoid": 4', "truncated"),
        ('{"empathy": 5, "information": 2, "humanoid": 4, "strategy": 0}', "not one of"),
        ('{"empathy": 3, "information": 2, "humanoid": 4}', "missing key"),
        ('{"empathy": 3, "information": 2, "humanoid": 4, "strategy": 1, "x": 1}', "unexpected key"),
        ('{"empathy": "3", "information": 2, "humanoid": 4, "strategy": 1}', "not one of"),
        ('{"empathy": true, "information": 2, "humanoid": 4, "strategy": 1}', "not an integer"),
        ("Empathy: 3, Information: 2", "not JSON"),
        ("", "empty"),
        (None, "empty"),
    ],
)
def test_parse_rejects(text, why):
    with pytest.raises(SchemaError, match=why):
        parse_json_answer(text, reward_schema())


def test_clean_seeker_prefix_quotes_marker():
    assert clean_seeker('Seeker: "I feel so alone."') == ("I feel so alone.", False)
    assert clean_seeker("Thanks, that helps a lot. [END]") == ("Thanks, that helps a lot.", True)
    assert clean_seeker("[end]") == ("", True)
    assert clean_seeker("Thank you <END> Supporter: you're welcome") == ("Thank you", True)
    # A run-on into the other speaker's turn is cut, and a marker there does not count.
    text, ended = clean_seeker("I guess so.\nSupporter: Take care! [END]")
    assert (text, ended) == ("I guess so.", False)
    assert clean_seeker("**User**: ok  then\n", end_marker="<|bye|>") == ("ok then", False)
    assert has_end_marker("bye [ END ]") and not has_end_marker("the end of it")


def test_clean_supporter_strategy_tag_and_prefix():
    assert clean_supporter("Supporter: (Affirmation) You are doing great.") == "You are doing great."
    assert clean_supporter("[Emotional Validation] That sounds hard.") == "That sounds hard."
    assert clean_supporter("'It is okay.'\nSeeker: thanks") == "It is okay."
    tax = load_taxonomy("cso8")
    is_tag = lambda label: tax.canonical(label) is not None  # noqa: E731
    assert clean_supporter("(I think) this helps.", is_tag=is_tag) == "(I think) this helps."
    assert clean_supporter("(EV) It makes sense.", is_tag=is_tag) == "It makes sense."
