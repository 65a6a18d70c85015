"""`escpro eval run --model <escpro train output>` evaluates the trained model as trained: base +
the run's adapter, with the run's own tokenizer (where a training chat template lives)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from escpro.cli import cli

pytest.importorskip("peft")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "train"))


@pytest.mark.slow
def test_eval_run_on_a_train_output_equals_base_plus_adapter(tmp_path, repo_dir):
    from fixtures import make_extract_dir  # tests/train/fixtures.py

    from escpro.evaluate.trained import resolve_train_output

    from .test_eval_run import make_testset

    data = make_extract_dir(tmp_path / "data", n_dialogues=2)
    out = tmp_path / "sft"
    res = CliRunner().invoke(cli, [
        "train", "--config", str(repo_dir / "configs/train/tiny-cpu.yaml"), "--method", "sft",
        "--data", str(data), "--out", str(out), "--max-steps", "1",
    ])
    assert res.exit_code == 0, res.output
    resolved = resolve_train_output(out)
    assert resolved["adapter"] and Path(resolved["adapter"]).is_dir()
    assert resolved["tokenizer"] and (Path(resolved["tokenizer"]) / "tokenizer.json").is_file()

    ts = make_testset(tmp_path / "t.jsonl", n_dialogues=1)
    common = ["--testset", str(ts), "--backend", "transformers", "--max-new-tokens", "8", "--json"]
    a = CliRunner().invoke(cli, ["eval", "run", "--model", str(out), "--out", str(tmp_path / "a"), *common])
    assert a.exit_code == 0, a.output
    b = CliRunner().invoke(cli, ["eval", "run", "--model", resolved["model"], "--adapter", resolved["adapter"],
                                 "--out", str(tmp_path / "b"), *common])
    assert b.exit_code == 0, b.output
    preds_a = [json.loads(x)["raw"] for x in (tmp_path / "a/predictions.jsonl").read_text().splitlines()]
    preds_b = [json.loads(x)["raw"] for x in (tmp_path / "b/predictions.jsonl").read_text().splitlines()]
    assert preds_a == preds_b and len(preds_a) == 4
    assert json.loads(a.stdout)["name"] == "sft"


def test_not_a_train_output_is_a_plain_model(tmp_path):
    from escpro.evaluate.trained import is_train_output

    assert not is_train_output(str(tmp_path))
    assert not is_train_output(None)
