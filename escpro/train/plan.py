"""Resolving a recipe without loading weights: what `escpro train --check` prints, and the first
thing every run does, so bad input stops before any model is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from escpro import paper_defaults as P
from escpro.errors import ConfigError
from escpro.train.config import TrainConfig
from escpro.train.data import TrainData, load_train_data
from escpro.train.launch import read_deepspeed, world_size
from escpro.train.methods import method
from escpro.train.models import MANIFEST, ModelLoadError, is_local
from escpro.train.template import read_template


def check_model_ref(name: str | None, what: str) -> str:
    """Describe a model reference; a local path must be a model dir (nothing is loaded)."""
    if not name:
        raise ConfigError(f"train.{what} is not set (a local dir, an HF id, or 'tiny')")
    if name == "tiny":
        return "tiny random Qwen2 (built locally on first use)"
    p = Path(name).expanduser()
    if p.exists():
        if (p / MANIFEST).is_file():
            return f"escpro train output {p.resolve()}"
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"{what} {name}: directory has no config.json (not a model directory)")
        try:
            conf = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ModelLoadError(f"{what} {name}: config.json is not valid JSON") from None
        if not isinstance(conf, dict) or "model_type" not in conf:
            raise ModelLoadError(f"{what} {name}: config.json has no model_type (not a transformers model)")
        return f"local {p.resolve()}"
    if name.startswith((".", "/", "~")):
        raise ModelLoadError(f"{what} {name}: directory not found")
    return f"hub id {name} (not checked offline)"


TRACKER_MODULES = {"tensorboard": ("tensorboard", "the train extra installs it: pip install -e '.[train]'"),
                   "wandb": ("wandb", "pip install wandb, then wandb login")}


def _check_trackers(targets: list[str]) -> None:
    import importlib.util

    for t in targets:
        if t in TRACKER_MODULES and importlib.util.find_spec(TRACKER_MODULES[t][0]) is None:
            raise ConfigError(f"train.report_to {t}: {TRACKER_MODULES[t][0]} is not installed ({TRACKER_MODULES[t][1]})")


def resolve_plan(cfg: TrainConfig, *, load_data: bool = True) -> tuple[dict[str, Any], TrainData | None]:
    """Everything knowable before loading weights; raises EscproError on bad input."""
    notes: list[str] = []
    plan: dict[str, Any] = {"method": cfg.method, "mode": cfg.mode, "trainer": method(cfg.method).trainer_label}
    if cfg.init_from:
        if not (Path(cfg.init_from) / MANIFEST).is_file():
            raise ConfigError(f"init_from {cfg.init_from}: not an `escpro train` output (no {MANIFEST})")
        plan["model"] = f"init_from {cfg.init_from}"
    else:
        plan["model"] = check_model_ref(cfg.model, "model")
    if cfg.uses_reference:
        if cfg.ref_model:
            plan["reference"] = check_model_ref(cfg.ref_model, "ref_model")
        elif cfg.mode == "lora":
            plan["reference"] = "the starting model (adapter disabled; an init_from LoRA stage is merged into it)"
        else:
            plan["reference"] = "a frozen copy of the starting model"
    else:
        plan["reference"] = "none (reference-free loss)"
        if cfg.ref_model:
            notes.append(f"ref_model ignored: {cfg.method} uses no reference model")
        if cfg.precompute_ref_log_probs:
            notes.append(f"precompute_ref_log_probs ignored: {cfg.method} uses no reference model")
    if cfg.chat_template:
        read_template(cfg.chat_template)
    ds = read_deepspeed(cfg.deepspeed)
    plan["deepspeed"] = f"ZeRO-{ds['zero_optimization'].get('stage')}" if ds else None

    m = method(cfg.method)
    if cfg.per_device_batch_size < m.min_per_device_batch:
        raise ConfigError(f"train: {m.name} needs per_device_batch_size >= {m.min_per_device_batch} "
                          f"({m.min_per_device_reason})")
    ws = world_size()
    try:
        accum = cfg.accumulation(ws)
    except ValueError as exc:
        raise ConfigError(f"train: {exc}") from None
    plan["batch"] = {
        "global": cfg.global_batch_size,
        "per_device": cfg.per_device_batch_size,
        "gradient_accumulation": accum,
        "world_size": ws,
        "effective": cfg.per_device_batch_size * accum * ws,
    }
    n_gpu = int(P.PAPER_NUM_GPUS.value)
    if cfg.gradient_accumulation_steps is None and cfg.global_batch_size % (cfg.per_device_batch_size * n_gpu) == 0:
        plan["batch"]["on_paper_8_gpus"] = (
            f"{cfg.per_device_batch_size} x {cfg.accumulation(n_gpu)} x {n_gpu} = {cfg.global_batch_size}"
        )
    if plan["batch"]["effective"] != cfg.global_batch_size:
        notes.append(f"effective batch {plan['batch']['effective']} differs from global_batch_size {cfg.global_batch_size}")
    plan["schedule"] = {"epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "max_steps": cfg.max_steps}
    plan["loss"] = {k: getattr(cfg, k) for k in method(cfg.method).loss}
    plan["report_to"] = cfg.report_targets
    plan["validation"] = {"val_size": cfg.val_size, "eval_steps": cfg.eval_steps or 10 * cfg.logging_steps} if cfg.val_size else None
    _check_trackers(cfg.report_targets)
    plan["lengths"] = {
        "max_length": cfg.max_length,
        "max_prompt_length": cfg.prompt_budget,
        "max_completion_length": cfg.max_completion_length,
    }
    if cfg.mode == "lora":
        plan["lora"] = {"r": cfg.lora_rank, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout, "target": cfg.lora_target}
    data = None
    if cfg.data and load_data:
        data = load_train_data(cfg.data, cfg.method, cfg.dialogues)
        plan["data"] = {"file": str(data.path), "records": len(data.records), "read": data.read, "kind": data.kind}
        notes.extend(data.notes)
    elif cfg.data:
        plan["data"] = {"file": cfg.data}
    else:
        plan["data"] = None
        notes.append("no data set: pass --data DIR (an `escpro extract` output) to train")
    if cfg.model and not cfg.init_from and not is_local(cfg.model) and cfg.model != "tiny":
        notes.append("hub model: needs network access or a populated HF cache at run time")
    plan["notes"] = notes
    return plan, data
