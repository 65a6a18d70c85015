"""A full `escpro eval run` on the tiny random model through the transformers backend.

The random model answers garbage: the run must finish, write every prediction, and count the
invalid ones instead of crashing.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from escpro.cli import cli

pytest.importorskip("torch")
import escpro.roles.backends.transformers  # noqa: E402,F401  (an import error of escpro itself must fail, never skip)


@pytest.mark.slow
def test_tiny_model_eval_run_counts_invalid(tmp_path):
    from escpro.tiny_model import ensure_tiny_model

    from .test_eval_run import make_testset

    model_dir = ensure_tiny_model()
    ts = make_testset(tmp_path / "t.jsonl", n_dialogues=2)  # 8 items
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, [
        "eval", "run", "--backend", "transformers", "--model", str(model_dir), "--testset", str(ts),
        "--out", str(out), "--max-new-tokens", "12", "--batch-size", "4", "--json",
    ])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 8 == info["generated"]
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    n_invalid = sum(r["invalid"] for r in rows)
    assert n_invalid == info["invalid"] == info["scores"]["invalid_count"]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["n"] == 8 and scores["invalid"] == pytest.approx(n_invalid / 8)
    # a greedy rerun with --overwrite reproduces the same answers (deterministic decoding)
    res2 = CliRunner().invoke(cli, [
        "eval", "run", "--backend", "transformers", "--model", str(model_dir), "--testset", str(ts),
        "--out", str(out), "--max-new-tokens", "12", "--batch-size", "4", "--json", "--overwrite",
    ])
    assert res2.exit_code == 0, res2.output
    rows2 = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["raw"] for r in rows2] == [r["raw"] for r in rows]
