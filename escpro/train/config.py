"""`train:` config section (importing it must not import torch).

One TrainConfig expresses every hyper-parameter of the paper's Tables 13/14 (docs/paper.md
section 5) plus what a TRL run needs. Batch sizes are GLOBAL, as in the paper: the per-device batch
times gradient accumulation times the world size must equal `global_batch_size`; accumulation is
derived at run time from the launcher's WORLD_SIZE. Names LLaMA-Factory users know are accepted as
aliases (pref_beta, simpo_gamma, kto_chosen_weight, kto_rejected_weight, cutoff_len, ...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from escpro import paper_defaults as P
from escpro.config_base import SEED_MAX, Section
from escpro.train.methods import MethodName, method

# LLaMA-Factory (and TRL) spellings accepted in recipes and on the command line -> our field name.
ALIASES: dict[str, str] = {
    "pref_beta": "beta",
    "kto_chosen_weight": "desirable_weight",
    "kto_rejected_weight": "undesirable_weight",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "per_device_batch_size",
    "cutoff_len": "max_length",
    "max_target_length": "max_completion_length",
    "lora_r": "lora_rank",
    "model_name_or_path": "model",
    "lr": "learning_rate",
    "resume_from_checkpoint": "resume",
    "output_dir": "out",
}

# Experiment trackers TRL can report to (transformers' report_to names).
REPORT_TO: tuple[str, ...] = ("none", "tensorboard", "wandb")


class TrainConfig(Section):
    """Everything one `escpro train` run needs; see docs/train.md for the recipe table."""

    # What to train
    method: MethodName = "dpo"
    mode: Literal["lora", "full"] = "lora"
    model: str | None = Field(
        None, description="local dir, HF id, or 'tiny' (the locally built random test model)"
    )
    revision: str | None = Field(None, description="HF revision (branch, tag or commit)")
    trust_remote_code: bool = False
    attn_implementation: str | None = Field(
        None, description="e.g. eager (recommended for Gemma-2 training), sdpa, flash_attention_2"
    )
    init_from: str | None = Field(
        None,
        description="a previous `escpro train` output (e.g. the SFT stage) to start from; its "
        "LoRA adapter is merged into the base and the result is also the reference model",
    )
    ref_model: str | None = Field(
        None, description="explicit reference model (dir or id); default: the starting model"
    )

    # Data
    data: str | None = Field(None, description="an `escpro extract` dir or a .jsonl file")
    dialogues: int | None = Field(
        None, ge=1, description="train on the first N dialogues (by path_ids) only"
    )
    shuffle_seed: int | None = Field(None, ge=0, le=SEED_MAX, description="shuffle records once before training")
    chat_template: str | None = Field(
        None,
        description="Jinja template (inline or a .jinja path) used when the tokenizer has none "
        "or to replace it",
    )
    fold_system: Literal["auto", "always", "never"] = Field(
        "auto",
        description="fold the system prompt into the first user turn; auto = when the template "
        "rejects a system role (Gemma-2)",
    )
    max_length: int = Field(2048, ge=16, description="prompt + completion tokens (LLaMA-Factory cutoff_len default)")
    max_completion_length: int = Field(
        int(P.MAX_TARGET_LENGTH.value), ge=1, description=P.MAX_TARGET_LENGTH.source
    )
    max_prompt_length: int | None = Field(
        None, ge=1, description="default: max_length - max_completion_length; truncated from the left"
    )

    # Schedule (Table 13). Batch sizes are global.
    epochs: float = Field(3.0, gt=0)
    global_batch_size: int = Field(32, ge=1)
    per_device_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int | None = Field(
        None, ge=1, description="default: derived from global batch / (per-device x world size)"
    )
    learning_rate: float = Field(1e-6, gt=0)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1, description="stop after N optimizer steps (-1: run the epochs)")
    seed: int = Field(42, ge=0, le=SEED_MAX)
    logging_steps: int = Field(1, ge=1)
    save_steps: int | None = Field(None, ge=1, description="checkpoint every N steps (default: each epoch)")
    save_total_limit: int | None = Field(2, ge=1)
    resume: bool | str = Field(
        False, description="true: resume from the last checkpoint in out/checkpoints; or a path"
    )

    # Loss parameters (Table 14)
    beta: float = Field(0.1, gt=0, description="DPO/IPO/KTO beta, SimPO beta, ORPO lambda")
    simpo_gamma: float = Field(0.5, ge=0, description="SimPO target reward margin")
    desirable_weight: float = Field(1.0, gt=0, description="KTO weight of desirable examples")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO weight of undesirable examples")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    precompute_ref_log_probs: bool = Field(
        False, description="compute pi_ref log-probs once before training (cached on disk)"
    )
    ref_cache_dir: str | None = Field(
        None, description="where precomputed reference log-probs are cached (default ~/.cache/escpro/ref-logps)"
    )

    # LoRA
    lora_rank: int = Field(int(P.LORA_RANK.value), ge=1, description=P.LORA_RANK.source)
    lora_alpha: float = Field(float(P.LORA_ALPHA.value), gt=0, description=P.LORA_ALPHA.source)
    lora_dropout: float = Field(float(P.LORA_DROPOUT.value), ge=0, lt=1, description=P.LORA_DROPOUT.source)
    lora_target: str | list[str] = Field("all", description="'all' = every linear layer, or module names")

    # Hardware
    deepspeed: str | None = Field(None, description="DeepSpeed JSON (configs/deepspeed/zero2.json)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool | None = Field(None, description="default: on with CUDA, off on CPU")
    gradient_checkpointing: bool | None = Field(None, description="default: on with CUDA")
    dataloader_num_workers: int = Field(0, ge=0)

    # Validation and tracking
    val_size: float = Field(
        0.0, ge=0,
        description="held-out validation share (< 1) or record count (>= 1), split by tree so a "
        "dialogue's records stay on one side; evaluated every eval_steps (LLaMA-Factory val_size)",
    )
    eval_steps: int | None = Field(
        None, ge=1, description="with val_size: evaluate every N steps (default 10 x logging_steps); always once at the end"
    )
    report_to: str | list[str] = Field(
        "none", description="experiment tracker(s) TRL reports to: none, tensorboard (logs in out/tensorboard), wandb"
    )

    # Outputs
    out: str | None = Field(None, description="output directory")
    merge: bool = Field(False, description="also save base + adapter merged into out/merged")
    plot: bool = True

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for alias, name in ALIASES.items():
            if alias in out:
                val = out.pop(alias)
                if name in out and out[name] != val:
                    raise ValueError(f"{alias} (alias of {name}) and {name} disagree: {val!r} vs {out[name]!r}")
                out[name] = val
        return out

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        bad = [t for t in self.report_targets if t not in REPORT_TO]
        if bad:
            raise ValueError(f"report_to: {', '.join(bad)} is not one of {', '.join(REPORT_TO)}")
        if self.max_steps == 0:
            raise ValueError("max_steps: -1 (run the epochs) or a positive number of steps, not 0")
        prompt_max = self.prompt_budget
        if prompt_max < 1:
            raise ValueError(
                f"max_length ({self.max_length}) leaves no room for a prompt after "
                f"max_completion_length ({self.max_completion_length})"
            )
        if self.global_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not a multiple of "
                f"per_device_batch_size {self.per_device_batch_size}"
            )
        return self

    @property
    def prompt_budget(self) -> int:
        if self.max_prompt_length is not None:
            return self.max_prompt_length
        return self.max_length - self.max_completion_length

    @property
    def report_targets(self) -> list[str]:
        items = [self.report_to] if isinstance(self.report_to, str) else list(self.report_to)
        items = [t.strip() for it in items for t in str(it).split(",") if t.strip()]
        return [t for t in items if t != "none"] if len(items) > 1 else (items or ["none"])

    @property
    def uses_reference(self) -> bool:
        return method(self.method).reference

    def data_file_name(self) -> str:
        return method(self.method).data_file

    def accumulation(self, world_size: int) -> int:
        """Gradient accumulation so per-device x accumulation x world size = global batch."""
        if self.gradient_accumulation_steps is not None:
            return self.gradient_accumulation_steps
        per_step = self.per_device_batch_size * world_size
        if self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not divisible by per_device_batch_size "
                f"{self.per_device_batch_size} x world size {world_size}; set gradient_accumulation_steps "
                "or per_device_batch_size"
            )
        return max(1, self.global_batch_size // per_step)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`key=value` pairs (values parsed as YAML scalars) -> a dict for the train section.

    `train.key=value` is accepted too. Unknown keys are reported by validation, not here.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key.startswith("train."):
            key = key[len("train."):]
        if not key:
            raise ValueError(f"override {item!r} has an empty key")
        try:
            val = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            val = raw
        out[key] = val
    return out
