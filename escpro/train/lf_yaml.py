"""`escpro train --config` on a flat LLaMA-Factory YAML (the file `llamafactory-cli train` takes).

Keys with an escpro meaning become the `train:` section; keys LLaMA-Factory needs but escpro does
not (its dataset registry, template names, preprocessing workers, ...) are listed as ignored;
anything else is an error, every such key named at once. The paper's recipes were LLaMA-Factory
runs, so a user can bring the same file here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escpro.errors import ConfigError
from escpro.train.launch import world_size
from escpro.train.methods import REGISTRY

ESCPRO_SECTIONS = {"roles", "build", "extract", "train", "eval"}
LF_MARKERS = {"stage", "finetuning_type", "model_name_or_path", "dataset", "dataset_dir", "template"}

# LLaMA-Factory key -> escpro train key (same meaning, maybe another name).
SAME: dict[str, str] = {
    "model_name_or_path": "model", "adapter_name_or_path": "init_from", "ref_model": "ref_model",
    "trust_remote_code": "trust_remote_code", "pref_beta": "beta", "simpo_gamma": "simpo_gamma",
    "kto_chosen_weight": "desirable_weight", "kto_rejected_weight": "undesirable_weight",
    "pref_label_smoothing": "label_smoothing", "lora_rank": "lora_rank", "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout", "per_device_train_batch_size": "per_device_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps", "learning_rate": "learning_rate",
    "num_train_epochs": "epochs", "lr_scheduler_type": "lr_scheduler_type", "warmup_ratio": "warmup_ratio",
    "weight_decay": "weight_decay", "max_grad_norm": "max_grad_norm", "max_steps": "max_steps", "seed": "seed",
    "logging_steps": "logging_steps", "save_steps": "save_steps", "save_total_limit": "save_total_limit",
    "output_dir": "out", "report_to": "report_to", "val_size": "val_size", "eval_steps": "eval_steps",
    "bf16": "bf16", "gradient_checkpointing": "gradient_checkpointing", "deepspeed": "deepspeed",
    "resume_from_checkpoint": "resume", "cutoff_len": "max_length", "plot_loss": "plot",
    "dataloader_num_workers": "dataloader_num_workers",
}
# LLaMA-Factory keys that steer LLaMA-Factory itself; escpro decides these another way.
IGNORED: dict[str, str] = {
    "dataset": "escpro reads the export's pairs/kto/sft file for the method",
    "template": "escpro uses the model's own chat template (set chat_template to replace it)",
    "do_train": "always true", "overwrite_output_dir": "escpro replaces out/'s model files",
    "overwrite_cache": "no dataset cache", "preprocessing_num_workers": "records are prepared in-process",
    "ddp_timeout": "accelerate's default", "per_device_eval_batch_size": "= per_device_train_batch_size",
    "eval_strategy": "evaluates every eval_steps when val_size is set", "fp16": "bf16 on CUDA, fp32 on CPU",
    "flash_attn": "set attn_implementation", "enable_liger_kernel": "not used", "use_unsloth": "not used",
    "packing": "never packed", "neat_packing": "never packed", "mask_history": "every assistant turn is trained",
    "train_on_prompt": "prompt tokens are never trained", "save_only_model": "checkpoints hold the optimizer too",
    "pref_ftx": "an SFT term on chosen replies is not part of CSO", "quantization_bit": "not supported",
    "save_strategy": "each epoch, or every save_steps", "logging_dir": "TensorBoard logs go to out/tensorboard",
    "run_name": "not used", "tokenized_path": "not used", "streaming": "not used", "buffer_size": "not used",
    "eval_dataset": "the validation split comes from val_size",
    "max_samples": "escpro's --dialogues N keeps whole dialogues instead of N records",
}
# LLaMA-Factory's stage (and, for stage dpo, pref_loss) of each method in the registry.
STAGES = {m.lf_stage: m.name for m in REGISTRY.values() if m.lf_stage and m.lf_pref_loss is None}
PREF_LOSS = {m.lf_pref_loss: m.name for m in REGISTRY.values() if m.lf_pref_loss}


@dataclass
class Converted:
    train: dict[str, Any]
    ignored: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def is_llamafactory(data: dict[str, Any]) -> bool:
    """A flat LLaMA-Factory file: no escpro section, at least one LLaMA-Factory key."""
    return not (set(data) & ESCPRO_SECTIONS) and bool(set(data) & LF_MARKERS)


def _method(data: dict[str, Any], src: str) -> str:
    stage = str(data.get("stage", "sft")).lower()
    if stage in STAGES:
        return STAGES[stage]
    if stage == "dpo":
        loss = str(data.get("pref_loss", "sigmoid")).lower()
        if loss not in PREF_LOSS:
            raise ConfigError(f"{src}: pref_loss {loss}: escpro trains {', '.join(PREF_LOSS)}")
        return PREF_LOSS[loss]
    raise ConfigError(f"{src}: stage {stage}: escpro trains stage {', '.join(STAGES)} or dpo "
                      f"(pref_loss {'/'.join(PREF_LOSS)})")


def _data_dir(value: Any) -> str:
    """dataset_dir: escpro's export (or its llamafactory/ folder, whose parent holds the jsonl files)."""
    p = Path(str(value))
    if (p / "dataset_info.json").is_file() and p.name == "llamafactory" and (p.parent / "manifest.json").is_file():
        return str(p.parent)
    return str(p)


CONVERT: dict[str, Callable[[Any], Any]] = {
    "flash_attn": lambda v: {"fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager"}.get(str(v)),
}


def convert(data: dict[str, Any], src: str) -> Converted:
    """The train section for a LLaMA-Factory YAML; raises naming every unknown key."""
    known = set(SAME) | set(IGNORED) | {"stage", "pref_loss", "finetuning_type", "dataset_dir", "lora_target"}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise ConfigError(f"{src}: LLaMA-Factory keys escpro does not know: {', '.join(unknown)} "
                          "(docs/train.md lists the keys it reads and ignores)")
    out: dict[str, Any] = {"method": _method(data, src)}
    ft = str(data.get("finetuning_type", "lora")).lower()
    if ft not in ("lora", "full"):
        raise ConfigError(f"{src}: finetuning_type {ft}: escpro trains lora or full")
    out["mode"] = ft
    if "dataset_dir" in data:
        out["data"] = _data_dir(data["dataset_dir"])
    for key, val in data.items():
        if key in SAME and val is not None:
            out[SAME[key]] = val
    if data.get("lora_target") is not None:  # "all" or comma-separated module names, as in LLaMA-Factory
        names = [x.strip() for x in str(data["lora_target"]).split(",") if x.strip()]
        out["lora_target"] = "all" if names == ["all"] else names
    if data.get("flash_attn") not in (None, "auto"):
        out["attn_implementation"] = CONVERT["flash_attn"](data["flash_attn"])
    ignored = {k: IGNORED[k] for k in data if k in IGNORED}
    conv = Converted(out, ignored)
    # LLaMA-Factory's batch is per-device x accumulation per GPU; escpro's recipes state the global one.
    per = int(out.get("per_device_batch_size", 1))
    acc = int(out.get("gradient_accumulation_steps", 1))
    out["global_batch_size"] = per * acc * world_size()
    conv.notes.append(f"global_batch_size {out['global_batch_size']} = per_device_train_batch_size {per} x "
                      f"gradient_accumulation_steps {acc} x world size {world_size()}")
    if ignored:
        conv.notes.append("ignored LLaMA-Factory keys: " + "; ".join(f"{k} ({why})" for k, why in ignored.items()))
    return conv
