"""DeepSpeed ZeRO-2: a real single-process run on the CPU (gloo), the process-group variables, and
a clear refusal when a GPU is asked for and none is present.

The first ZeRO-2 run on a machine compiles DeepSpeed's CPU ops (~2-3 minutes on 2 cores, cached in
~/.cache/torch_extensions); later runs take ~30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from escpro.train.launch import ensure_dist_env, read_deepspeed

REPO = Path(__file__).resolve().parents[2]
ZERO2 = REPO / "configs" / "deepspeed" / "zero2.json"


def test_dist_env_is_filled_only_where_absent():
    env = {"WORLD_SIZE": "8", "MASTER_ADDR": "10.0.0.1"}
    added = ensure_dist_env(env)
    assert env["WORLD_SIZE"] == "8" and env["MASTER_ADDR"] == "10.0.0.1"
    assert env["RANK"] == "0" and env["LOCAL_RANK"] == "0" and int(env["MASTER_PORT"]) > 0
    assert set(added) == {"RANK", "LOCAL_RANK", "MASTER_PORT"}


def test_zero2_config_is_stage_2_with_auto_batch():
    ds = read_deepspeed(str(ZERO2))
    assert ds["zero_optimization"]["stage"] == 2
    assert ds["train_micro_batch_size_per_gpu"] == "auto" and ds["gradient_accumulation_steps"] == "auto"


def test_cuda_requested_on_a_cpu_machine_is_refused(make_cfg):
    import torch

    from escpro.errors import BackendUnavailable
    from escpro.train.run import train

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendUnavailable, match="no CUDA GPU is visible"):
        train(make_cfg(device="cuda"))


@pytest.mark.slow
def test_zero2_single_process_run_on_cpu(tiny_model, extract_dir, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / "zero2"
    cmd = [sys.executable, "-m", "escpro", "train", "--config", str(REPO / "configs/train/tiny-cpu.yaml"),
           "--method", "dpo", "--mode", "full", "--data", str(extract_dir), "--out", str(out),
           "--max-steps", "2", "--json", f"model={tiny_model}", f"deepspeed={ZERO2}"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["first_loss"] != summary["last_loss"]
    assert summary["deepspeed_zero_stage"] == 2  # the trainer really ran under a DeepSpeed engine
    assert summary["dist_env_set"] == ["LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"]
    assert (out / "model" / "model.safetensors").is_file()
