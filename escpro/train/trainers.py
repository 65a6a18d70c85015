"""The TRL config and trainer of a run, from its TrainConfig and the method's registry row
(methods.py): TRL's one config + one trainer per method, chosen by the registry.

TRL 1.16 names, checked against the installed source. IPO's tau and ORPO's lambda are `beta`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escpro.errors import ConfigError
from escpro.train.config import TrainConfig
from escpro.train.methods import method, trl_classes

if TYPE_CHECKING:
    from escpro.train.inputs import Models, TokenizedData
    from escpro.train.launch import Launch
    from escpro.train.refcache import RefLogpCache

# Template end tokens can add a couple of tokens past the content limits (see template.py).
LENGTH_MARGIN = 8


def method_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The loss parameters (Table 14) and the method's fixed loss settings, in TRL's names."""
    m = method(cfg.method)
    kwargs: dict[str, Any] = {k: getattr(cfg, k) for k in (*m.loss, *m.passthrough)}
    kwargs.update(m.fixed)
    kwargs["max_length"] = cfg.max_length + LENGTH_MARGIN
    if m.completion_limit:
        kwargs["max_completion_length"] = cfg.max_completion_length + LENGTH_MARGIN
    if m.reference:
        kwargs["precompute_ref_log_probs"] = cfg.precompute_ref_log_probs
    return kwargs


def build_args(cfg: TrainConfig, out_dir: str, *, world_size: int, use_cpu: bool,
               deepspeed: dict | None) -> Any:
    config_cls, _ = trl_classes(cfg.method)
    bf16 = (not use_cpu) if cfg.bf16 is None else cfg.bf16
    gc = (not use_cpu) if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing
    kwargs: dict[str, Any] = dict(
        output_dir=out_dir,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.accumulation(world_size),
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if cfg.save_steps else "epoch",
        save_total_limit=cfg.save_total_limit,
        report_to=cfg.report_targets,
        disable_tqdm=True,  # escpro's own bar (train/progress.py) replaces transformers' one
        use_cpu=use_cpu,
        bf16=bf16,
        dataloader_num_workers=cfg.dataloader_num_workers,
        deepspeed=deepspeed,
    )
    if cfg.save_steps:
        kwargs["save_steps"] = cfg.save_steps
    # transformers 5.2x renamed gradient_checkpointing (a deprecated alias now, with a FutureWarning)
    names = {f.name for f in dataclasses.fields(config_cls)}
    kwargs["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = gc
    if cfg.val_size:
        kwargs.update(eval_strategy="steps", eval_steps=cfg.eval_steps or 10 * cfg.logging_steps,
                      per_device_eval_batch_size=cfg.per_device_batch_size)
    kwargs.update(method_kwargs(cfg))
    return config_cls(**kwargs)


def lora_config(cfg: TrainConfig) -> Any:
    from peft import LoraConfig

    target = "all-linear" if cfg.lora_target == "all" else cfg.lora_target
    return LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=target,
        task_type="CAUSAL_LM",
    )


@dataclass(frozen=True)
class BuiltTrainer:
    trainer: Any
    args: Any  # the TRL config instance
    tracking: dict[str, str]  # tracker name -> where it logs


def make_trainer(cfg: TrainConfig, launch: Launch, tokenized: TokenizedData, models: Models,
                 cache: RefLogpCache | None, *, progress: bool) -> BuiltTrainer:
    """The method's TRL trainer over the tokenized data, with escpro's progress bar and trackers
    pointed into the run directory; TRL's refusal of a setup becomes a ConfigError."""
    from datasets import Dataset

    args = build_args(cfg, str(launch.ckpt_dir), world_size=launch.world_size, use_cpu=launch.use_cpu,
                      deepspeed=launch.deepspeed)
    _, trainer_cls = trl_classes(cfg.method)
    kwargs: dict[str, Any] = {"model": models.model, "args": args, "train_dataset": Dataset.from_list(tokenized.records),
                              "processing_class": tokenized.tokenizer}
    if tokenized.val_records:
        kwargs["eval_dataset"] = Dataset.from_list(tokenized.val_records)
    if cfg.mode == "lora":
        # Given a peft_config, TRL wraps the model itself; with a ready PeftModel DPO/KTO would copy
        # the adapter into a second "ref" adapter (and save it with ours).
        kwargs["peft_config"] = lora_config(cfg)
    if cfg.uses_reference:
        kwargs["ref_model"] = models.ref_model
        kwargs["escpro_cache"] = cache
    try:
        trainer = trainer_cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{method(cfg.method).trainer_label} rejected the setup: {str(exc).splitlines()[0]}") from None
    if cfg.precompute_ref_log_probs and cfg.uses_reference and getattr(trainer, "ref_model", None) is not None:
        trainer.ref_model = None  # the log-probs are in the dataset now; free the memory
    from escpro.train import progress as train_progress

    train_progress.install(trainer, f"train {cfg.method}", progress)
    return BuiltTrainer(trainer=trainer, args=args, tracking=_point_trackers(trainer, launch.out))


def _point_trackers(trainer: Any, out: Path) -> dict[str, str]:
    """TensorBoard logs to out/tensorboard (transformers' default is buried under checkpoints/)."""
    where: dict[str, str] = {}
    for cb in trainer.callback_handler.callbacks:
        if type(cb).__name__ == "TensorBoardCallback":
            cb.logging_dir = str(out / "tensorboard")
            where["tensorboard"] = cb.logging_dir
    return where
