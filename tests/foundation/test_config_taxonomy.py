"""Config validation messages, override precedence, and the taxonomies as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from escpro.config import load_config
from escpro.errors import ConfigError
from escpro.formatting import format_supporter_turn, parse_supporter_turn, system_prompt
from escpro.taxonomy import load_taxonomy


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_unknown_key_is_reported_with_its_path(tmp_path: Path) -> None:
    p = write(tmp_path, "build:\n  c: 1.0\n  max_iteratons: 5\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == f"{p}: build.max_iteratons: unknown key"


def test_unknown_section_and_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cfg.yaml: bild: unknown key"):
        load_config(write(tmp_path, "bild: {}\n"))
    with pytest.raises(ConfigError, match=r"cfg.yaml: build.max_iterations: .*integer"):
        load_config(write(tmp_path, "build:\n  max_iterations: lots\n"))
    with pytest.raises(ConfigError, match=r"cfg.yaml: roles.seeker.backend: "):
        load_config(write(tmp_path, "roles:\n  seeker:\n    backend: gpt5\n"))


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cfg.yaml: not valid YAML"):
        load_config(write(tmp_path, "build: [\n"))
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_paper_defaults_and_overrides(tmp_path: Path) -> None:
    cfg = load_config()
    assert cfg.build.c == 1.0 and cfg.build.sim_max_rounds == 4
    assert cfg.build.min_iterations == 100 and cfg.build.max_end_nodes == 25
    assert cfg.roles.reward_alpha == 7 and cfg.roles.reward_bias == -3
    assert cfg.extract.theta == 0.5
    p = write(tmp_path, "build:\n  max_iterations: 10\n  min_iterations: 5\n")
    cfg = load_config(p, overrides={"build": {"max_iterations": 8, "c": None}})
    assert cfg.build.max_iterations == 8  # the flag wins over the file
    assert cfg.build.min_iterations == 5  # the file wins over the default
    assert cfg.build.c == 1.0  # an unset flag (None) changes nothing


def test_cso8_taxonomy_and_extes_mapping() -> None:
    tax = load_taxonomy("cso8")
    assert len(tax) == 8 and "Others" not in tax.names
    assert tax.canonical("Reflective Statements") == "Emotional Validation"
    assert tax.canonical(" normalize   experiences ") == "Emotional Validation"
    assert tax.canonical("Offer Hope") == "Affirmation"
    assert tax.canonical("Promote Self-Care Practices") == "Collaborative Planning"
    assert tax.canonical("Share Information") == "Share Information"
    assert tax.canonical("Others") is None
    assert tax.canonical("") is None


def test_esconv8_taxonomy_keeps_others() -> None:
    tax = load_taxonomy("esconv8")
    assert tax.canonical("others") == "Others"
    assert tax.canonical("Reflection of Feelings") == "Reflection of feelings"
    assert len(tax) == 8


def test_unknown_taxonomy_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown taxonomy 'cso9'"):
        load_taxonomy("cso9")
    bad = tmp_path / "tax.yaml"
    bad.write_text("name: t\nstrategies:\n  - name: A\n    definition: a\nmapping:\n  X: B\n")
    with pytest.raises(ConfigError, match=r"mapping.X: 'B' is not a strategy"):
        load_taxonomy(str(bad))


def test_training_text_format_roundtrip() -> None:
    tax = load_taxonomy("cso8")
    prompt = system_prompt(tax)
    for s in tax.strategies:
        assert f"- {s.name}: {s.definition}" in prompt
    text = format_supporter_turn("Affirmation", " You did well. ")
    assert text == "(Affirmation) You did well."
    assert parse_supporter_turn(text, tax) == ("Affirmation", "You did well.", "Affirmation")
    assert parse_supporter_turn("(offer hope) Hang on.", tax)[0] == "Affirmation"
    assert parse_supporter_turn("(Cheering) Yay", tax) == (None, "Yay", "Cheering")
    assert parse_supporter_turn("no prefix here", tax) == (None, "no prefix here", None)
