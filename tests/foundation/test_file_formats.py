"""Every file format escpro reads is a pydantic model, and a bad file gets one error naming the
file and every bad key at once (issue 15.5)."""

from __future__ import annotations

import json

import pytest

from escpro.errors import ConfigError
from escpro.roles.endpoints import load_endpoints
from escpro.roles.prompts import load_templates
from escpro.roles.schemas import (
    REWARD_KEYS,
    SchemaError,
    model_for,
    reward_schema,
    strategy_schema,
    validate,
)
from escpro.taxonomy import load_taxonomy


def _raises(fn, *needles):
    with pytest.raises(ConfigError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def test_taxonomy_file_lists_every_problem(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: t\nsurprise: 1\nstrategies:\n  - {name: A, definition: d, colour: red}\n"
                 "  - {definition: no name}\nmapping: {x: Nope}\n")
    _raises(lambda: load_taxonomy(str(p)), str(p), "surprise: unknown key", "strategies.0.colour: unknown key",
            "strategies.1.name: required key missing")
    p.write_text("name: t\nstrategies:\n  - {name: A, definition: d}\n  - {name: ' a ', definition: e}\n"
                 "mapping: {x: Nope, y: a}\n")
    _raises(lambda: load_taxonomy(str(p)), "duplicate strategy names", "mapping.x: 'Nope' is not a strategy")
    p.write_text("- just a list\n")
    _raises(lambda: load_taxonomy(str(p)), "(top level): a mapping is required")


def test_taxonomy_model_keeps_the_loaded_values():
    t = load_taxonomy("esconv8")
    assert len(t) == 8 and t.canonical(" question ") == "Question"
    assert all("\n" not in s.definition for s in t.strategies)


def test_prompt_template_lists_every_problem(tmp_path):
    (tmp_path / "reward.yaml").write_text('system: "score $bogus"\nuser: "  "\ncolour: red\n')
    _raises(lambda: load_templates(tmp_path), "reward.yaml", "system: unknown placeholder ${bogus}",
            "user: a non-empty string is required", "transcript: required key missing", "colour: unknown key")
    (tmp_path / "reward.yaml").write_text('system: "a $"\nuser: "u"\ntranscript: "${system} ${user}"\n')
    _raises(lambda: load_templates(tmp_path), "system: invalid $-placeholder")


def test_endpoints_file_lists_every_problem(tmp_path):
    p = tmp_path / "eps.json"
    p.write_text(json.dumps({"judge": {}, "reward": {"base_url": "ftp://x", "model": "", "colour": 1},
                             "seeker": {"model": "m"}}))
    _raises(lambda: load_endpoints(p), str(p), "judge: unknown role", "reward.base_url: 'ftp://x' is not an http",
            "reward.model: a non-empty string", "reward.colour: unknown key", "seeker.base_url: required key missing")
    p.write_text("{}")
    _raises(lambda: load_endpoints(p), "is required")
    p.write_text(json.dumps({"reward": {"base_url": ["http://127.0.0.1:8/v1", "ftp://y"], "model": "m",
                                        "max_model_len": 0}}))
    _raises(lambda: load_endpoints(p), "reward.base_url: 'ftp://y' is not an http", "reward.max_model_len")
    p.write_text(json.dumps({"reward": {"base_url": "http://127.0.0.1:8/v1", "model": "m"}}))
    assert load_endpoints(p) == {"reward": {"base_url": "http://127.0.0.1:8/v1", "model": "m"}}


def test_role_schemas_are_generated_from_models_as_engines_need_them():
    """The JSON the engines see: an enum per field (never a range), required keys, no extras."""
    names = load_taxonomy("cso8").names
    s = strategy_schema(names)
    assert s == {"title": "StrategyScores", "type": "object",
                 "properties": {n: {"type": "integer", "enum": list(range(1, 11))} for n in names},
                 "required": names, "additionalProperties": False}
    assert json.loads(json.dumps(s)) == s  # plain JSON for every backend
    assert set(s.model.model_json_schema()["properties"]) == set(names)
    r = reward_schema()
    assert r["required"] == list(REWARD_KEYS) and r["properties"]["strategy"]["enum"] == [0, 1, 2, 3, 4]


def test_schema_validation_lists_every_problem_and_rejects_lookalikes():
    r = reward_schema()
    with pytest.raises(SchemaError) as info:
        validate({"empathy": 9, "information": 1.0, "humanoid": True, "x": 1}, r)
    msg = str(info.value)
    for needle in ("empathy: 9 is not one of", "information: 1.0 is not an integer", "humanoid: True is not an integer",
                   "unexpected key 'x'", "missing key 'strategy'"):
        assert needle in msg, (needle, msg)
    with pytest.raises(SchemaError, match="not an object"):
        validate([1, 2], r)


def test_a_schema_that_crossed_a_process_boundary_validates_the_same():
    r = reward_schema()
    plain = json.loads(json.dumps(r))
    assert not hasattr(plain, "model") and model_for(plain) is r.model  # the same cached model
    ok = {"empathy": 4, "information": 0, "humanoid": 2, "strategy": 1}
    assert validate(ok, plain) == ok
    with pytest.raises(SchemaError, match="unsupported schema"):
        validate(ok, {"type": "object", "properties": {"a": {"type": "string"}}})
