"""TRL config and trainer for each method (TRL 1.16 names, checked against the installed source).

sft   -> SFTTrainer on pre-tokenized dialogues with an assistant-turn mask
dpo   -> DPOTrainer, loss_type sigmoid (CSO: turn-level DPO on ESC-Pro pairs)
ipo   -> DPOTrainer, loss_type ipo (beta is IPO's tau)
kto   -> KTOTrainer (desirable/undesirable weights)
simpo -> experimental CPOTrainer, loss_type simpo, cpo_alpha 0 (pure SimPO), simpo_gamma
orpo  -> experimental ORPOTrainer (beta is ORPO's lambda)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from escpro.train.config import TrainConfig

# Template end tokens can add a couple of tokens past the content limits (see template.py).
LENGTH_MARGIN = 8


def trl_classes(method: str) -> tuple[type, type]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if method == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTConfig, SFTTrainer
    if method in ("dpo", "ipo"):
        from trl import DPOConfig, DPOTrainer

        from escpro.train.refcache import CachedRefLogpsMixin

        class EscproDPOTrainer(CachedRefLogpsMixin, DPOTrainer):
            def __init__(self, *args: Any, escpro_cache: Any = None, **kwargs: Any) -> None:
                self.escpro_cache = escpro_cache
                super().__init__(*args, **kwargs)

        return DPOConfig, EscproDPOTrainer
    if method == "kto":
        from trl import KTOConfig, KTOTrainer

        from escpro.train.refcache import CachedRefLogpsMixin

        class EscproKTOTrainer(CachedRefLogpsMixin, KTOTrainer):
            def __init__(self, *args: Any, escpro_cache: Any = None, **kwargs: Any) -> None:
                self.escpro_cache = escpro_cache
                super().__init__(*args, **kwargs)

        return KTOConfig, EscproKTOTrainer
    if method == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        return CPOConfig, CPOTrainer
    if method == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOConfig, ORPOTrainer
    raise ValueError(f"unknown method {method}")


def method_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The loss parameters (Table 14) in each TRL config's own names."""
    m = cfg.method
    max_len = cfg.max_length + LENGTH_MARGIN
    if m == "sft":
        return {"max_length": max_len, "packing": False, "assistant_only_loss": False}
    if m in ("dpo", "ipo"):
        return {
            "loss_type": ["sigmoid" if m == "dpo" else "ipo"],
            "beta": cfg.beta,
            "label_smoothing": cfg.label_smoothing,
            "max_length": max_len,
            "precompute_ref_log_probs": cfg.precompute_ref_log_probs,
        }
    if m == "kto":
        return {
            "beta": cfg.beta,
            "desirable_weight": cfg.desirable_weight,
            "undesirable_weight": cfg.undesirable_weight,
            "max_length": max_len,
            "precompute_ref_log_probs": cfg.precompute_ref_log_probs,
        }
    if m == "simpo":
        return {
            "loss_type": "simpo",
            "cpo_alpha": 0.0,
            "beta": cfg.beta,
            "simpo_gamma": cfg.simpo_gamma,
            "label_smoothing": cfg.label_smoothing,
            "max_length": max_len,
            "max_completion_length": cfg.max_completion_length + LENGTH_MARGIN,
        }
    if m == "orpo":
        return {
            "beta": cfg.beta,
            "max_length": max_len,
            "max_completion_length": cfg.max_completion_length + LENGTH_MARGIN,
        }
    raise ValueError(m)


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
