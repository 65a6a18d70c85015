"""Issue 17 item 6: numbers a user can trust (B with no valid prediction, eval report over a mixed
folder, the reference rows and a readable plot)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from escpro.cli import cli
from escpro.evaluate.predictions import PredItem
from escpro.evaluate.scoring import format_text, score_items
from escpro.taxonomy import load_taxonomy


def _items(preds):
    tax = load_taxonomy("cso8")
    names = tax.names
    out = []
    for i, p in enumerate(preds):
        out.append(PredItem(id=str(i), gold=names[i % len(names)], pred=p, invalid=p is None,
                            pred_label="(none)" if p is None else p, response_gold="a reply",
                            response_pred="something"))
    return tax, out


def test_all_invalid_predictions_give_no_B_with_reason():
    tax, items = _items([None] * 6)
    rep = score_items(items, tax, bootstrap=20)
    assert rep["B"] is None
    assert "no valid prediction" in rep["B_reason"] and "6 of 6" in rep["B_reason"]
    assert rep["ci"]["B"] is None  # no resample has a preference either
    text = format_text(rep)
    assert "B   (preference bias) n/a   n/a: no valid prediction" in text


def test_one_valid_prediction_gives_a_B():
    tax, items = _items([None] * 5 + ["Affirmation"])
    rep = score_items(items, tax)
    assert rep["B"] is not None and rep["B_reason"] is None


def _eval_dir(root, name, scores):
    d = root / name
    d.mkdir()
    (d / "scores.json").write_text(json.dumps(scores))
    (d / "run.json").write_text(json.dumps({"name": name, "method": "CSO", "mode": "LoRA"}))
    return d


def test_report_skips_non_eval_dirs_and_defaults_to_table2(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    _eval_dir(runs, "eval-cso", {"Q": 0.3, "B": 1.2, "Qw": 0.4, "rouge_l": 0.2, "n": 10, "invalid": 0.1})
    _eval_dir(runs, "eval-bad", {"Q": 0.0, "B": None, "B_reason": "no valid prediction (8 of 8 invalid)",
                                 "Qw": 0.0, "rouge_l": 0.0, "n": 8, "invalid": 1.0})
    (runs / "train-dpo").mkdir()  # a training run caught by the glob
    out = tmp_path / "rep"
    res = CliRunner().invoke(cli, ["eval", "report", *map(str, sorted(runs.iterdir())), "--reference",
                                   "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert "note: skipped" in res.stderr and "train-dpo" in res.stderr
    doc = json.loads(res.stdout)
    sources = [r["source"] for r in doc["rows"]]
    assert sources.count("this run") == 2
    assert {s for s in sources if s != "this run"} == {"paper Table 2"} and len(sources) == 2 + 24
    md = (out / "table.md").read_text()
    assert "B n/a for eval-bad (CSO): no valid prediction" in md
    width, height = Image.open(out / "table.png").size
    assert width <= 1600 and height <= 1600, (width, height)


def test_report_all_tables_stays_readable(tmp_path):
    d = _eval_dir(tmp_path, "eval-x", {"Q": 0.3, "B": 1.2, "Qw": 0.4, "rouge_l": 0.2, "n": 10})
    out = tmp_path / "rep"
    res = CliRunner().invoke(cli, ["eval", "report", str(d), "--reference", "--reference-table", "all",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    width, height = Image.open(out / "table.png").size
    # 76 rows: the figure grows downwards (one label line per row), never to 7,500 px wide.
    assert width <= 1600 and height / 76 >= 25, (width, height)


def test_report_with_no_eval_run_fails_in_one_line(tmp_path):
    (tmp_path / "train").mkdir()
    res = CliRunner().invoke(cli, ["eval", "report", str(tmp_path / "train")])
    assert res.exit_code != 0
    assert res.stderr.strip().splitlines()[-1].startswith("error: no eval run")
