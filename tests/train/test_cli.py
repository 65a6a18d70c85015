"""`escpro train` on the command line: --check over every recipe, overrides, bad input stops
before training with one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from escpro.cli import cli

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "configs" / "train").glob("*.yaml"))
TINY = str(REPO / "configs" / "train" / "tiny-cpu.yaml")


def run(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)], catch_exceptions=False)


def test_recipe_set_is_complete():
    names = {p.stem for p in RECIPES}
    for backbone in ("llama31-8b", "qwen25-7b", "gemma2-9b"):
        for mode in ("full", "lora"):
            for method in ("sft", "dpo", "ipo", "simpo", "kto", "orpo"):
                assert f"{backbone}_{mode}_{method}" in names
    assert "tiny-cpu" in names


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_check_validates_every_recipe(recipe):
    res = run("--config", recipe, "--check", "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    assert plan["ok"] and plan["batch"]["effective"] == plan["batch"]["global"]


def test_check_reports_paper_values_and_aliases():
    res = run("--config", REPO / "configs/train/qwen25-7b_lora_simpo.yaml", "--check", "--json",
              "pref_beta=2.5", "simpo_gamma=1.0")
    plan = json.loads(res.output)
    assert plan["loss"] == {"beta": 2.5, "simpo_gamma": 1.0}
    assert plan["batch"]["on_paper_8_gpus"] == "1 x 16 x 8 = 128"  # Table 13: Qwen LoRA CSO batch 128
    res = run("--config", REPO / "configs/train/llama31-8b_full_kto.yaml", "--check", "--json",
              "kto_chosen_weight=0.8", "kto_rejected_weight=0.4")
    plan = json.loads(res.output)
    assert plan["loss"] == {"beta": 0.9, "desirable_weight": 0.8, "undesirable_weight": 0.4}


def test_check_with_data_and_dialogues(extract_dir):
    res = run("--config", TINY, "--check", "--json", "--method", "kto", "--data", extract_dir, "--dialogues", 2)
    plan = json.loads(res.output)
    assert plan["data"]["file"].endswith("kto.jsonl") and plan["data"]["records"] == 8  # 2 dialogues x 2 turns x 2


@pytest.mark.slow
def test_cli_trains_with_method_and_data_overrides(extract_dir, tmp_path):
    out = tmp_path / "cli"
    res = run("--config", TINY, "--method", "orpo", "--data", extract_dir, "--out", out, "--max-steps", 2, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["method"] == "orpo" and summary["steps"] == 2
    assert (out / "metrics.json").is_file() and (out / "escpro_train.json").is_file()


def _err(res):
    assert res.exit_code != 0
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    return lines[0]


@pytest.fixture()
def bad(tmp_path, extract_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "pairs.jsonl").write_text("")
    (tmp_path / "missing.jsonl").write_text(json.dumps(
        {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "x"}]}) + "\n")
    (tmp_path / "nolabel.jsonl").write_text(json.dumps(
        {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "x"}],
         "label": "yes"}) + "\n")
    (tmp_path / "notjson.jsonl").write_text("{not json\n")
    return tmp_path


@pytest.mark.parametrize("args, expected", [
    (["--data", "{x}/pairs.jsonl", "--method", "sft"], "holds preference pairs"),
    (["--data", "{x}/sft.jsonl"], "holds SFT dialogues (messages) but method dpo needs preference pairs"),
    (["--data", "{b}/missing.jsonl"], "record 1: missing column(s) rejected"),
    (["--data", "{b}/nolabel.jsonl", "--method", "kto"], "'label' must be true or false"),
    (["--data", "{b}/notjson.jsonl"], "line 1: not valid JSON"),
    (["--data", "{b}/empty"], "empty dataset"),
    (["--data", "{b}", "--method", "kto"], "no kto.jsonl for method kto"),
    (["--data", "{x}", "--dialogues", "0"], "train.dialogues"),
    (["--data", "{x}", "--model", "{b}/nonexistent/"], "directory not found"),
    (["--data", "{x}", "--model", "{b}"], "has no config.json"),
    (["--data", "{x}", "learning_rat=1e-5"], "train.learning_rat: unknown key"),
    (["--data", "{x}", "global_batch_size=3"], "global_batch_size 3 is not a multiple"),
    (["--data", "{x}", "--method", "kto", "per_device_batch_size=1"], "kto needs per_device_batch_size >= 2"),
    (["--data", "{x}", "deepspeed=nope.json"], "deepspeed config nope.json: file not found"),
    (["--data", "{x}", "init_from={b}"], "not an `escpro train` output"),
    (["--data", "{x}", "--resume-from-checkpoint"], "no checkpoint-* directory"),
])
def test_bad_input_stops_before_training_with_one_line(bad, extract_dir, args, expected):
    args = [a.format(x=extract_dir, b=bad) for a in args]
    out = bad / "out"
    res = run("--config", TINY, "--out", out, *args)
    assert expected in _err(res)
    assert not (out / "metrics.json").exists()


@pytest.mark.slow
def test_unloadable_model_weights(bad, extract_dir, tiny_model):
    broken = bad / "broken-model"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    res = run("--config", TINY, "--out", bad / "out", "--data", extract_dir, "--model", broken)
    assert f"model {broken} cannot be loaded" in _err(res)


def test_recipe_alias_conflict_and_cli_alias_override(tmp_path, extract_dir):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  model: tiny\n  pref_beta: 0.3\n  beta: 0.2\n")
    assert "pref_beta (alias of beta) and beta disagree" in _err(run("--config", recipe, "--check"))
    recipe.write_text("train:\n  model: tiny\n  method: kto\n  per_device_batch_size: 2\n  kto_chosen_weight: 0.7\n")
    res = run("--config", recipe, "--check", "--json", "desirable_weight=0.9")
    assert json.loads(res.output)["loss"]["desirable_weight"] == 0.9
