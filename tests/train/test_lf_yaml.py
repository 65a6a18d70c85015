"""Issue 17 item 5: `escpro train` reads a flat LLaMA-Factory YAML (keys with an escpro meaning),
names the keys it ignores, and lists every unknown key at once."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from escpro.cli import cli

# LLaMA-Factory's examples/train_lora/llama3_lora_dpo.yaml, with the data and model made local.
LF_DPO = """
### model
model_name_or_path: {model}
trust_remote_code: true
### method
stage: dpo
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
pref_beta: 0.2
pref_loss: sigmoid
### dataset
dataset_dir: {data}
dataset: escpro_pairs
template: llama3
cutoff_len: 1024
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
dataloader_num_workers: 0
### output
output_dir: {out}
logging_steps: 1
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none
### train
per_device_train_batch_size: 2
gradient_accumulation_steps: 1
learning_rate: 5.0e-3
num_train_epochs: 1.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: false
ddp_timeout: 180000000
resume_from_checkpoint: null
max_steps: 2
"""


def _write(tmp_path, text, **fmt):
    p = tmp_path / "lf.yaml"
    p.write_text(text.format(**fmt), encoding="utf-8")
    return p


def run(*args):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


def test_check_maps_keys_and_names_ignored_ones(tmp_path, tiny_model, extract_dir):
    cfg = _write(tmp_path, LF_DPO, model=tiny_model, data=extract_dir, out=tmp_path / "o")
    res = run("--config", cfg, "--check", "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["method"] == "dpo" and plan["mode"] == "lora" and plan["loss"] == {"beta": 0.2}
    assert plan["lora"]["r"] == 8 and plan["lora"]["target"] == "all"
    assert plan["lengths"]["max_length"] == 1024 and plan["data"]["file"].endswith("pairs.jsonl")
    assert plan["batch"]["global"] == 2
    notes = " ".join(plan["notes"])
    for key in ("template (", "dataset (", "preprocessing_num_workers", "ddp_timeout", "max_samples"):
        assert key in notes, key


@pytest.mark.parametrize(("stage", "loss", "method"), [("sft", None, "sft"), ("kto", None, "kto"),
                                                        ("dpo", "ipo", "ipo"), ("dpo", "simpo", "simpo"),
                                                        ("dpo", "orpo", "orpo")])
def test_stage_and_pref_loss_pick_the_method(tmp_path, stage, loss, method):
    doc = {"stage": stage, "finetuning_type": "full", "model_name_or_path": "tiny", "learning_rate": 1e-5,
           "per_device_train_batch_size": 2}
    if loss:
        doc["pref_loss"] = loss
    p = tmp_path / "lf.yaml"
    p.write_text(yaml.safe_dump(doc))
    res = run("--config", p, "--check", "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["method"] == method and plan["mode"] == "full"


def test_every_unknown_key_is_named_at_once(tmp_path):
    p = tmp_path / "lf.yaml"
    p.write_text(yaml.safe_dump({"stage": "dpo", "finetuning_type": "lora", "pref_bta": 0.1,
                                 "num_epochs": 3, "learning_rate": 1e-6}))
    res = run("--config", p, "--check")
    assert res.exit_code != 0
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "num_epochs, pref_bta" in line


@pytest.mark.parametrize(("doc", "msg"), [({"stage": "ppo"}, "stage ppo"), ({"stage": "dpo", "pref_loss": "hinge"}, "pref_loss hinge"),
                                          ({"stage": "sft", "finetuning_type": "freeze"}, "finetuning_type freeze")])
def test_unsupported_values_are_one_line_errors(tmp_path, doc, msg):
    p = tmp_path / "lf.yaml"
    p.write_text(yaml.safe_dump({"model_name_or_path": "tiny", **doc}))
    res = run("--config", p, "--check")
    assert res.exit_code != 0 and msg in res.stderr


@pytest.mark.slow
def test_trains_from_the_llamafactory_yaml(tmp_path, tiny_model, extract_dir):
    out = tmp_path / "o"
    cfg = _write(tmp_path, LF_DPO, model=tiny_model, data=extract_dir, out=out)
    res = run("--config", cfg, "--json", "ref_cache_dir=" + str(tmp_path / "rc"))
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["method"] == "dpo" and summary["steps"] == 2 and (out / "adapter").is_dir()
    assert "is a LLaMA-Factory YAML" in res.stderr
