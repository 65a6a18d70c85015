"""`escpro score` as a user runs it: both input formats, JSON keys, errors as one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from escpro.cli import cli


def run(*args):
    res = CliRunner().invoke(cli, ["score", *map(str, args)])
    return res


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_kang_slice_json_keys(shared_data):
    res = run(shared_data / "kang_predictions_slice.json", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for key in ("Q", "Qw", "B", "rouge_l", "n", "invalid", "per_strategy", "b_degenerate"):
        assert key in out
    assert out["Q"] == pytest.approx(0.14715, abs=5e-4)
    assert out["Qw"] == pytest.approx(0.20794, abs=5e-4)
    assert out["B"] == pytest.approx(0.84972, abs=5e-4)
    assert out["n"] == 40 and out["invalid"] == 0.0
    assert set(out["per_strategy"]["Question"]) >= {"f1", "preference"}


def test_degenerate_slice_text_names_strategy(shared_data):
    res = run(shared_data / "kang_predictions_degenerate_slice.json")
    assert res.exit_code == 0, res.output
    assert "degenerate in B" in res.output and "Affirmation and Reassurance" in res.output


def test_escpro_jsonl_with_invalid_and_rouge_only_items(tmp_path):
    rows = [
        {"id": "1", "strategy_gold": "Affirmation", "strategy_pred": "Affirmation",
         "response_gold": "you can do it", "response_pred": "you can do it"},
        {"id": "2", "strategy_gold": "Share Information", "strategy_pred": None, "invalid": True,
         "strategy_label": "Hugging", "response_gold": "here is a fact", "response_pred": "hug"},
        {"id": "3", "strategy_gold": None, "strategy_pred": "Affirmation",
         "response_gold": "well done", "response_pred": "well done"},
    ]
    pred = write_jsonl(tmp_path / "predictions.jsonl", rows)
    res = run(pred, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n"] == 3 and out["n_strategy"] == 2 and out["n_rouge"] == 3
    assert out["invalid_count"] == 1 and out["invalid"] == pytest.approx(0.5)
    assert out["invalid_labels"] == {"Hugging": 1}
    # Labels in play: Affirmation, Share Information (the invalid adds none): F1 = (1 + 0) / 2.
    assert out["Q"] == pytest.approx(0.5) and out["f1_labels"] == ["Affirmation", "Share Information"]
    assert out["rouge_l"] == pytest.approx(2 / 3)
    assert out["taxonomy"] == "cso8"


def test_labels_option_and_case_insensitive(tmp_path):
    rows = [{"strategy_gold": "yes", "strategy_pred": "YES"},
            {"strategy_gold": "No", "strategy_pred": "maybe"}]
    pred = write_jsonl(tmp_path / "p.jsonl", rows)
    out = json.loads(run(pred, "--labels", "yes,no", "--json").output)
    assert out["invalid_count"] == 1 and out["per_strategy"]["yes"]["f1"] == 1.0


def test_unknown_gold_label_is_one_line_error(tmp_path):
    pred = write_jsonl(tmp_path / "p.jsonl", [{"strategy_gold": "Dancing", "strategy_pred": "x"}])
    res = run(pred)
    assert res.exit_code != 0
    assert "Dancing" in res.output and "Traceback" not in res.output


def test_malformed_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"strategy_gold": "Affirmation", "strategy_pred": "Affirmation"}\n{oops\n')
    res = run(bad)
    assert res.exit_code != 0 and "line 2" in res.output
    arr = tmp_path / "bad.json"
    arr.write_text('[{"foo": 1}]')
    res = run(arr)
    assert res.exit_code != 0 and "strg_gold" in res.output


def test_bootstrap_flag(shared_data):
    out = json.loads(run(shared_data / "kang_predictions_slice.json", "--json", "--bootstrap", "50").output)
    assert set(out["ci"]) == {"Q", "Qw", "B", "rouge_l"} and out["bootstrap"]["n"] == 50
