"""Test-set building and reading."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.dialogue import Utterance as Turn
from escpro.errors import DataError
from escpro.evaluate.testsets import kang_items, read_items, turn_items, write_items
from escpro.seeds.model import Dialogue
from escpro.taxonomy import load_taxonomy


def dialogue(n_pairs: int = 8, seed_id: str = "d1", unlabelled: int | None = 3) -> Dialogue:
    strategies = load_taxonomy("cso8").names
    turns = [Turn("supporter", "Hello, how can I help?", None, True)]
    for k in range(n_pairs):
        turns.append(Turn("seeker", f"seeker says {k}"))
        strategy = None if k == unlabelled else strategies[k % len(strategies)]
        turns.append(Turn("supporter", f"supporter says {k}", strategy))
    return Dialogue(seed_id, 0, "Work stress", "My boss yells at me.", tuple(turns))


def test_turn_items_skip_context_only_and_keep_unlabelled_for_rouge():
    items = turn_items([dialogue()])
    assert len(items) == 8  # the greeting is context, never an item
    first = items[0]
    assert first.id == "d1:t2"
    assert [t.speaker for t in first.context] == ["supporter", "seeker"]
    assert [t["role"] for t in first.to_record()["context"]] == ["Supporter", "User"]
    assert first.gold_response == "supporter says 0" and first.strategy_gold == "Emotional Validation"
    assert items[3].strategy_gold is None  # unlabelled supporter turn: ROUGE-L only
    assert all(t.strategy is None for it in items for t in it.context)  # ExTES contexts: unlabelled
    assert len(items[-1].context) == 16


def test_kang_items_windows_and_labels():
    d = dialogue(12)
    items = kang_items([d], seed=7)
    assert items and all(5 <= len(it.context) <= 15 for it in items)
    assert all(it.strategy_gold for it in items)
    turn_of = {it.id: it.meta["turn"] for it in items}
    for it in items:
        # the window ends right before the target, and earlier supporter turns carry labels
        assert it.context[-1].text == d.turns[turn_of[it.id] - 1].text
        sup = [t for t in it.context if t.speaker == "supporter" and t.text != "Hello, how can I help?"]
        assert all(t.strategy or t.text == "supporter says 3" for t in sup)
    assert kang_items([d], seed=7) == items  # deterministic
    assert len(kang_items([d], per_dialogue=2)) == 2
    with pytest.raises(DataError):
        kang_items([d], min_window=9, max_window=4)


def test_round_trip_and_extes_sample_loads(tmp_path, shared_data):
    items = turn_items([dialogue()])
    path = tmp_path / "t.jsonl"
    write_items(items, path)
    back = read_items(path, load_taxonomy("cso8"))
    assert [i.to_record() for i in back] == [i.to_record() for i in items]
    extes = read_items(shared_data / "extes_test_contexts_sample.jsonl", load_taxonomy("cso8"))
    assert len(extes) == 20 and all(it.strategy_gold is None for it in extes)
    assert extes[0].context[0].speaker == "seeker" and extes[0].scene == "Depression and Low Mood"


def test_read_items_errors(tmp_path):
    tax = load_taxonomy("cso8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"context": [{"role": "User", "text": "hi"}], "gold_response": "x",
                               "strategy_gold": "Telepathy"}) + "\n")
    with pytest.raises(DataError, match="Telepathy"):
        read_items(bad, tax)
    bad.write_text(json.dumps({"context": [{"role": "Robot", "text": "hi"}], "gold_response": "x"}) + "\n")
    with pytest.raises(DataError, match="Robot"):
        read_items(bad, tax)
    bad.write_text('{"context": []}\n')
    with pytest.raises(DataError, match="line 1: context"):
        read_items(bad, tax)


def test_testset_command(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    # (the seed loader drops dialogues with an unlabelled supporter turn, as the paper does)
    seeds.write_text(json.dumps(dialogue(unlabelled=None).to_record()) + "\n")
    out = tmp_path / "t.jsonl"
    res = CliRunner().invoke(cli, ["eval", "testset", "--seeds", str(seeds), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["items"] == 8 and info["rouge_only"] == 0 and info["dialogues"] == 1
    assert len(out.read_text().splitlines()) == 8
    res = CliRunner().invoke(cli, ["eval", "testset", "--seeds", str(seeds), "--out", str(out), "--kang", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["kind"] == "kang"


def test_kang_set_from_real_esconv_sample(tmp_path, shared_data):
    out = tmp_path / "kang.jsonl"
    res = CliRunner().invoke(cli, ["eval", "testset", "--seeds", str(shared_data / "esconv_valid_sample.jsonl"),
                                   "--taxonomy", "esconv8", "--kang", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["items"] > 0 and info["rouge_only"] == 0
    items = read_items(out, load_taxonomy("esconv8"))
    assert all(5 <= len(it.context) <= 15 for it in items)
    assert any(t.strategy for it in items for t in it.context)  # earlier supporter turns labelled
    # the wrong taxonomy is refused with a hint, not a traceback
    with pytest.raises(DataError, match="--taxonomy"):
        read_items(out, load_taxonomy("cso8"))
