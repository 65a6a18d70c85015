"""Resolving a recipe without loading weights: what `escpro train --check` prints, and the first
thing every run does, so bad input stops before any model is loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True)
class BatchPlan:
    """How global_batch_size splits over devices and accumulation steps here (and on the paper's GPUs)."""

    global_size: int
    per_device: int
    gradient_accumulation: int
    world_size: int
    on_paper_gpus: str | None  # "4 x 4 x 8 = 128" when the paper's GPU count divides the batch

    @property
    def effective(self) -> int:
        return self.per_device * self.gradient_accumulation * self.world_size

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"global": self.global_size, "per_device": self.per_device,
                             "gradient_accumulation": self.gradient_accumulation,
                             "world_size": self.world_size, "effective": self.effective}
        if self.on_paper_gpus is not None:
            d["on_paper_8_gpus"] = self.on_paper_gpus
        return d


@dataclass(frozen=True)
class TrainPlan:
    """A resolved recipe: what `escpro train --check` prints (`as_dict`) and what a run starts from
    (`data`, `deepspeed_config`), so the run never re-derives what the check showed."""

    method: str
    mode: str
    trainer: str
    model: str
    reference: str
    deepspeed: str | None
    batch: BatchPlan
    schedule: dict[str, Any]
    loss: dict[str, Any]
    report_to: list[str]
    validation: dict[str, Any] | None
    lengths: dict[str, int]
    lora: dict[str, Any] | None
    data_section: dict[str, Any] | None
    notes: list[str]
    data: TrainData | None
    deepspeed_config: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """The plan document (key order is the order `--check` shows); `lora` only in LoRA mode."""
        d: dict[str, Any] = {
            "method": self.method, "mode": self.mode, "trainer": self.trainer, "model": self.model,
            "reference": self.reference, "deepspeed": self.deepspeed, "batch": self.batch.as_dict(),
            "schedule": self.schedule, "loss": self.loss, "report_to": self.report_to,
            "validation": self.validation, "lengths": self.lengths,
        }
        if self.lora is not None:
            d["lora"] = self.lora
        d["data"] = self.data_section
        d["notes"] = self.notes
        return d


def resolve_plan(cfg: TrainConfig, *, load_data: bool = True) -> tuple[dict[str, Any], TrainData | None]:
    """Everything knowable before loading weights, as the plan document and the data read;
    raises EscproError on bad input."""
    plan = make_plan(cfg, load_data=load_data)
    return plan.as_dict(), plan.data


def make_plan(cfg: TrainConfig, *, load_data: bool = True) -> TrainPlan:
    """Checks run in the order a user fixes things: models, files, batch, trackers, then data."""
    model = _describe_start(cfg)
    reference, notes = _describe_reference(cfg)
    deepspeed_config = _read_files(cfg)
    batch = _batch_plan(cfg)
    if batch.effective != cfg.global_batch_size:
        notes.append(f"effective batch {batch.effective} differs from global_batch_size {cfg.global_batch_size}")
    validation = ({"val_size": cfg.val_size, "eval_steps": cfg.eval_steps or 10 * cfg.logging_steps}
                  if cfg.val_size else None)
    _check_trackers(cfg.report_targets)
    data, data_section, data_notes = _read_data(cfg, load_data)
    notes.extend(data_notes)
    if cfg.model and not cfg.init_from and not is_local(cfg.model) and cfg.model != "tiny":
        notes.append("hub model: needs network access or a populated HF cache at run time")
    m = method(cfg.method)
    return TrainPlan(
        method=cfg.method, mode=cfg.mode, trainer=m.trainer_label, model=model, reference=reference,
        deepspeed=(f"ZeRO-{deepspeed_config['zero_optimization'].get('stage')}" if deepspeed_config else None),
        batch=batch,
        schedule={"epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "max_steps": cfg.max_steps},
        loss={k: getattr(cfg, k) for k in m.loss}, report_to=cfg.report_targets, validation=validation,
        lengths={"max_length": cfg.max_length, "max_prompt_length": cfg.prompt_budget,
                 "max_completion_length": cfg.max_completion_length},
        lora=({"r": cfg.lora_rank, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout, "target": cfg.lora_target}
              if cfg.mode == "lora" else None),
        data_section=data_section, notes=notes, data=data, deepspeed_config=deepspeed_config,
    )


def _describe_start(cfg: TrainConfig) -> str:
    if cfg.init_from:
        if not (Path(cfg.init_from) / MANIFEST).is_file():
            raise ConfigError(f"init_from {cfg.init_from}: not an `escpro train` output (no {MANIFEST})")
        return f"init_from {cfg.init_from}"
    return check_model_ref(cfg.model, "model")


def _describe_reference(cfg: TrainConfig) -> tuple[str, list[str]]:
    """What the loss compares against, and notes on reference settings a method ignores."""
    if cfg.uses_reference:
        if cfg.ref_model:
            return check_model_ref(cfg.ref_model, "ref_model"), []
        if cfg.mode == "lora":
            return "the starting model (adapter disabled; an init_from LoRA stage is merged into it)", []
        return "a frozen copy of the starting model", []
    notes = []
    if cfg.ref_model:
        notes.append(f"ref_model ignored: {cfg.method} uses no reference model")
    if cfg.precompute_ref_log_probs:
        notes.append(f"precompute_ref_log_probs ignored: {cfg.method} uses no reference model")
    return "none (reference-free loss)", notes


def _read_files(cfg: TrainConfig) -> dict[str, Any] | None:
    """Read (and so check) the chat template and DeepSpeed files; returns the DeepSpeed config."""
    if cfg.chat_template:
        read_template(cfg.chat_template)
    return read_deepspeed(cfg.deepspeed)


def _batch_plan(cfg: TrainConfig) -> BatchPlan:
    m = method(cfg.method)
    if cfg.per_device_batch_size < m.min_per_device_batch:
        raise ConfigError(f"train: {m.name} needs per_device_batch_size >= {m.min_per_device_batch} "
                          f"({m.min_per_device_reason})")
    ws = world_size()
    try:
        accum = cfg.accumulation(ws)
    except ValueError as exc:
        raise ConfigError(f"train: {exc}") from None
    n_gpu = int(P.PAPER_NUM_GPUS.value)
    on_paper = None
    if cfg.gradient_accumulation_steps is None and cfg.global_batch_size % (cfg.per_device_batch_size * n_gpu) == 0:
        on_paper = f"{cfg.per_device_batch_size} x {cfg.accumulation(n_gpu)} x {n_gpu} = {cfg.global_batch_size}"
    return BatchPlan(global_size=cfg.global_batch_size, per_device=cfg.per_device_batch_size,
                     gradient_accumulation=accum, world_size=ws, on_paper_gpus=on_paper)


def _read_data(cfg: TrainConfig, load: bool) -> tuple[TrainData | None, dict[str, Any] | None, list[str]]:
    """The data (when `load`), its plan section and its notes."""
    if cfg.data and load:
        data = load_train_data(cfg.data, cfg.method, cfg.dialogues)
        section = {"file": str(data.path), "records": len(data.records), "read": data.read, "kind": data.kind}
        return data, section, list(data.notes)
    if cfg.data:
        return None, {"file": cfg.data}, []
    return None, None, ["no data set: pass --data DIR (an `escpro extract` output) to train"]
