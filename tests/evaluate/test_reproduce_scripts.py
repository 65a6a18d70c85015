"""The paper-reproduction drivers print a complete, runnable plan with --dry-run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPTS = ["reproduce_table2.py", "reproduce_data_volume.py", "reproduce_random_ablation.py"]


def dry_run(repo_dir, script, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(repo_dir)}
    return subprocess.run([sys.executable, str(repo_dir / "scripts" / script), "--dry-run", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


@pytest.mark.parametrize("script", SCRIPTS)
def test_dry_run_prints_plan_and_runs_nothing(repo_dir, tmp_path, script):
    res = dry_run(repo_dir, script, "--out", str(tmp_path / "repro"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "escpro eval run" in out and "escpro eval report" in out
    assert "escpro train" in out or "-m escpro train" in out
    assert not (tmp_path / "repro").exists()  # nothing ran
    # every backbone appears
    for name in ("LLaMA-3.1-8B-Instruct", "Qwen-2.5-7B-Instruct", "Gemma-2-9b-it"):
        assert name in out


def test_table2_plan_covers_the_grid(repo_dir, tmp_path):
    res = dry_run(repo_dir, "reproduce_table2.py", "--backbones", "gemma", "--examples", "train.json",
                  "--kang-testset", "kang.jsonl", "--gpus", "1", cwd=tmp_path)
    out = res.stdout
    for baseline in ("none", "direct-refine", "self-refine", "example"):
        assert f"--baseline {baseline}" in out
    for mode, method in [("full", "sft"), ("full", "dpo"), ("lora", "sft"), ("lora", "dpo")]:
        assert f"gemma2-9b_{mode}_{method}.yaml" in out
    assert "--adapter" in out and "accelerate" not in out  # one GPU: no accelerate launch
    assert out.count("eval report") == 2  # ExTES and Kang test sets
    assert "--reference-table 'Table 2'" in out


def test_data_volume_plan_has_the_paper_volumes(repo_dir, tmp_path):
    out = dry_run(repo_dir, "reproduce_data_volume.py", "--backbones", "qwen", cwd=tmp_path).stdout
    for n in (100, 200, 300, 400, 423):
        assert f"--dialogues {n}" in out
    assert "data_volume.png" in out


def test_unknown_backbone_is_refused(repo_dir, tmp_path):
    res = dry_run(repo_dir, "reproduce_table2.py", "--backbones", "mistral", cwd=tmp_path)
    assert res.returncode != 0 and "mistral" in res.stderr


def test_data_volume_plot_from_scores(repo_dir, tmp_path, monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(repo_dir / "scripts"))
    import reproduce_data_volume as dv

    for name, q in [("cso_0", 0.2), ("cso_100", 0.25), ("sft_all", 0.22)]:
        d = tmp_path / "runs" / "qwen" / name
        d.mkdir(parents=True)
        (d / "scores.json").write_text(json.dumps({"Q": q, "B": 1.5, "Qw": 0.3, "rouge_l": 0.2}))
    dv.plot(tmp_path, ["qwen"], [0, 100, 200])
    png = tmp_path / "report" / "data_volume.png"
    assert png.stat().st_size > 5000
    summary = json.loads((tmp_path / "report" / "data_volume.json").read_text())
    assert set(summary["Qwen-2.5-7B-Instruct"]["cso"]) == {"0", "100"}
    assert summary["Qwen-2.5-7B-Instruct"]["sft"]["Q"] == 0.22
