"""Issue 17 item 3: the extract directory is a Hub-style dataset (README.md card with configs), its
strict variant renders under a Gemma-style template, and --push-to-hub refuses clearly offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from escpro.cli import cli
from escpro.extract.card import strict_messages
from tests.helpers import GEMMA2_TEMPLATE

REPO = Path(__file__).resolve().parents[2]


def cli_ok(*args):
    res = CliRunner().invoke(cli, [*map(str, args)])
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A real (simulated) build of the bundled seeds, extracted with the strict variant."""
    root = tmp_path_factory.mktemp("card")
    db = root / "trees.duckdb"
    cli_ok("build", "--seeds", REPO / "escpro" / "data" / "demo_seeds.json", "--db", db, "--config",
           REPO / "configs" / "build" / "tiny.yaml", "--backend", "sim", "--random-seed", "0", "--limit", "3", "--json")
    out = root / "esc-pro"
    cli_ok("extract", "--db", db, "--out", out, "--strict-template", "--json")
    return db, out


def test_card_front_matter_and_provenance(built):
    db, out = built
    text = (out / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---")[1])
    names = [c["config_name"] for c in meta["configs"]]
    assert names == ["pairs", "pairs_strict", "kto", "kto_strict", "sft", "sft_strict"]
    assert meta["license"] == "apache-2.0"  # the bundled demo seeds
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("strict/pairs.jsonl", "strict/kto.jsonl", "strict/sft.jsonl"):
        assert key in manifest["files"]
    for needle in ("demo_seeds.json", "random seed 0", "max_iterations", "| seeker | sim | sim |",
                   manifest["rule_text"], f"pairs: {manifest['counts']['pairs']}", "simulator backend"):
        assert needle in text, needle


def test_load_dataset_reads_the_directory(built, tmp_path):
    import datasets

    _, out = built
    cache = str(tmp_path / "hf-cache")  # a shared cache can hold an older build's copy of these paths
    manifest = json.loads((out / "manifest.json").read_text())
    pairs = datasets.load_dataset(str(out), split="train", cache_dir=cache)  # the default config
    assert len(pairs) == manifest["counts"]["pairs"] and {"prompt", "chosen", "rejected"} <= set(pairs.column_names)
    for config, key in (("kto", "kto"), ("sft", "sft"), ("pairs_strict", "pairs")):
        ds = datasets.load_dataset(str(out), config, split="train", cache_dir=cache)
        assert len(ds) == manifest["counts"][key], config


def _render_all(tok, records, kind):
    done = 0
    for r in records:
        msgs = r["messages"] if kind == "sft" else r["prompt"] + (r["chosen"] if kind == "pairs" else r["completion"])
        tok.apply_chat_template(msgs, tokenize=False)
        if kind == "pairs":
            tok.apply_chat_template(r["prompt"] + r["rejected"], tokenize=False)
        done += 1
    return done


def test_strict_variant_renders_every_record_with_a_gemma_template(built):
    from jinja2.exceptions import TemplateError
    from transformers import AutoTokenizer

    from escpro.tiny_model import ensure_tiny_model

    _, out = built
    tok = AutoTokenizer.from_pretrained(str(ensure_tiny_model()))
    tok.chat_template = GEMMA2_TEMPLATE
    for kind, name in (("pairs", "pairs.jsonl"), ("kto", "kto.jsonl"), ("sft", "sft.jsonl")):
        strict = [json.loads(x) for x in (out / "strict" / name).read_text().splitlines()]
        assert strict and _render_all(tok, strict, kind) == len(strict)
        plain = [json.loads(x) for x in (out / name).read_text().splitlines()]
        with pytest.raises(TemplateError):  # the plain files carry a system turn: Gemma refuses them
            _render_all(tok, plain[:1], kind)


def test_strict_messages_shapes():
    msgs = [{"role": "system", "content": "S"}, {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "u1"}, {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a"}]
    assert strict_messages(msgs) == [{"role": "user", "content": "S"}, {"role": "assistant", "content": "Hi"},
                                     {"role": "user", "content": "u1\n\nu2"}, {"role": "assistant", "content": "a"}]
    assert strict_messages([{"role": "system", "content": "S"}, {"role": "user", "content": "u"}]) == [
        {"role": "user", "content": "S\n\nu"}]


def test_push_to_hub_refuses_offline(built, tmp_path, monkeypatch):
    db, _ = built
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "ds"
    res = CliRunner().invoke(cli, ["extract", "--db", str(db), "--out", str(out), "--push-to-hub", "me/esc-pro"])
    assert res.exit_code != 0
    assert res.stderr.strip().splitlines()[-1].startswith("error: --push-to-hub me/esc-pro: HF_HUB_OFFLINE is set")
    assert (out / "pairs.jsonl").is_file() and (out / "README.md").is_file()  # nothing written is lost
