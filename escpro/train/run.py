"""One training run, end to end: validate, load, train, save (heavy imports happen here only)."""

from __future__ import annotations

import logging
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escpro.errors import ConfigError
from escpro.train import outputs
from escpro.train.config import TrainConfig
from escpro.train.launch import choose_device, ensure_dist_env, read_deepspeed, world_size
from escpro.train.methods import method
from escpro.train.models import (
    MANIFEST,
    ModelSource,
    fingerprint,
    load_model,
    load_tokenizer,
    read_manifest,
    resolve_model_name,
    source_of_output,
    start_source,
)
from escpro.train.plan import resolve_plan
from escpro.train.refcache import RefLogpCache, cache_key, default_cache_dir
from escpro.train.template import install_template, prepare_records, should_fold

log = logging.getLogger(__name__)


def default_out(cfg: TrainConfig) -> Path:
    return Path("runs") / "train" / f"{cfg.method}_{cfg.mode}"


def resume_arg(cfg: TrainConfig, ckpt_dir: Path) -> str | None:
    if cfg.resume is False:
        return None
    if cfg.resume is True or cfg.resume in ("last", "true"):
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
        if not last:
            raise ConfigError(f"--resume-from-checkpoint: no checkpoint-* directory in {ckpt_dir}")
        return last
    p = Path(str(cfg.resume))
    if not p.is_dir():
        raise ConfigError(f"--resume-from-checkpoint {p}: directory not found")
    return str(p)


def train(cfg: TrainConfig, *, train_section: dict[str, Any] | None = None,
          progress: bool = False) -> dict[str, Any]:
    """Run `cfg`; returns a summary (also written to out/metrics.json). `progress`: show escpro's
    training bar on stderr (nothing else is printed; the libraries' output is up to escpro.console)."""
    t0 = time.time()
    if not cfg.data:
        raise ConfigError("train.data is not set: pass --data DIR (an `escpro extract` output) or a .jsonl file")
    plan, data = resolve_plan(cfg)
    assert data is not None
    ds_config = read_deepspeed(cfg.deepspeed)
    dist_env = ensure_dist_env() if ds_config is not None else {}
    use_cpu = choose_device(cfg.device)
    ws = world_size()
    out = Path(cfg.out) if cfg.out else default_out(cfg)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    resume = resume_arg(cfg, ckpt_dir)

    import torch
    from datasets import Dataset

    from escpro.console import requiet

    requiet()  # some libraries reset their logger levels on import
    src = start_source(cfg)
    tok_dir = str(Path(cfg.init_from) / read_manifest(cfg.init_from)["tokenizer"]) if cfg.init_from else src.base
    tokenizer = load_tokenizer(tok_dir, src.revision if not cfg.init_from else None, cfg.trust_remote_code)
    install_template(tokenizer, cfg.chat_template, src.base)
    fold = should_fold(tokenizer, cfg.fold_system)
    split = _split(cfg, data.records)
    limits = {"fold": fold, "prompt_budget": cfg.prompt_budget, "completion_limit": cfg.max_completion_length,
              "max_length": cfg.max_length}
    records, stats = prepare_records(tokenizer, data.kind, split.train, **limits)
    val_records = prepare_records(tokenizer, data.kind, split.val, **limits)[0] if split.val else []
    if cfg.shuffle_seed is not None:
        random.Random(cfg.shuffle_seed).shuffle(records)
    dataset = Dataset.from_list(records)

    bf16 = (not use_cpu) if cfg.bf16 is None else cfg.bf16
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = load_model(src, dtype=dtype, trust_remote_code=cfg.trust_remote_code,
                       attn_implementation=cfg.attn_implementation)
    model.config.use_cache = False

    ref_model, ref_src = None, None
    if cfg.uses_reference:
        if cfg.ref_model:
            ref_src = (source_of_output(cfg.ref_model) if (Path(cfg.ref_model) / MANIFEST).is_file()
                       else ModelSource(resolve_model_name(cfg.ref_model), None))
        else:
            ref_src = src
        if cfg.ref_model or cfg.mode == "full":
            # Full mode: TRL would reload the reference from config._name_or_path, which for a model
            # merged from an SFT adapter is the BASE; load the starting model explicitly instead.
            ref_model = load_model(ref_src, dtype=dtype, trust_remote_code=cfg.trust_remote_code,
                                   attn_implementation=cfg.attn_implementation)
        # LoRA without ref_model: the new adapter sits on the starting model (an SFT adapter is
        # already merged into it), so TRL's "adapter disabled" reference IS the starting model.

    cache = None
    if cfg.precompute_ref_log_probs and cfg.uses_reference:
        import trl

        parts = {
            "kind": data.kind,
            "reference": ref_src.describe() if ref_src else None,
            "reference_fingerprint": fingerprint(ref_src) if ref_src else None,
            "revision": ref_src.revision if ref_src else None,
            "data_file_sha256": data.file_sha256,
            "records_sha256": _records_sha(records),
            "max_length": cfg.max_length,
            "max_prompt_length": cfg.prompt_budget,
            "max_completion_length": cfg.max_completion_length,
            "template_sha256": _sha(tokenizer.chat_template),
            "fold_system": fold,
            "dtype": str(dtype),
            "trl": trl.__version__,
        }
        if method(cfg.method).ref_depends_on_batch:
            parts["per_device_batch_size"] = cfg.per_device_batch_size
        root = Path(cfg.ref_cache_dir) if cfg.ref_cache_dir else default_cache_dir()
        cache = RefLogpCache(root, cache_key(parts), parts)

    from escpro.train.methods import trl_classes
    from escpro.train.trainers import build_args

    args = build_args(cfg, str(ckpt_dir), world_size=ws, use_cpu=use_cpu, deepspeed=ds_config)
    _, trainer_cls = trl_classes(cfg.method)
    kwargs: dict[str, Any] = {"model": model, "args": args, "train_dataset": dataset, "processing_class": tokenizer}
    if val_records:
        kwargs["eval_dataset"] = Dataset.from_list(val_records)
    if cfg.mode == "lora":
        # Given a peft_config, TRL wraps the model itself; with a ready PeftModel DPO/KTO would copy
        # the adapter into a second "ref" adapter (and save it with ours).
        from escpro.train.trainers import lora_config

        kwargs["peft_config"] = lora_config(cfg)
    if cfg.uses_reference:
        kwargs["ref_model"] = ref_model
        kwargs["escpro_cache"] = cache
    try:
        trainer = trainer_cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{plan['trainer']} rejected the setup: {str(exc).splitlines()[0]}") from None
    if cfg.precompute_ref_log_probs and cfg.uses_reference and getattr(trainer, "ref_model", None) is not None:
        trainer.ref_model = None  # the log-probs are in the dataset now; free the memory
    from escpro.train import progress as train_progress

    train_progress.install(trainer, f"train {cfg.method}", progress)
    tracking = _point_trackers(trainer, out)
    result = trainer.train(resume_from_checkpoint=resume)
    if val_records:
        trainer.evaluate()  # the final model's eval numbers, whatever eval_steps was

    summary: dict[str, Any] = {
        "method": cfg.method,
        "mode": cfg.mode,
        "records": len(records),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "seconds": round(time.time() - t0, 2),
        "world_size": ws,
        "deepspeed_zero_stage": (ds_config["zero_optimization"].get("stage")
                                 if getattr(trainer, "is_deepspeed_enabled", False) and ds_config else None),
        "dist_env_set": sorted(dist_env),
        "gradient_accumulation": args.gradient_accumulation_steps,
        "truncation": stats,
        "fold_system": fold,
        "data": str(data.path),
        "data_notes": data.notes,
        "validation": {"records": len(val_records), "trees": split.val_groups, "of_trees": split.groups,
                       "val_size": cfg.val_size} if cfg.val_size else None,
        "report_to": cfg.report_targets,
        "tracking": tracking,
        "ref_cache": None if cache is None else {"key": cache.key, "dir": str(cache.dir), "hits": cache.hits, "misses": cache.misses},
        "out": str(out),
    }
    losses = [r["loss"] for r in outputs.step_rows(trainer.state.log_history)]
    if losses:
        summary["first_loss"], summary["last_loss"] = losses[0], losses[-1]
    summary.update(outputs.final_eval(trainer.state.log_history))
    sub = "adapter" if cfg.mode == "lora" else "model"
    if trainer.is_world_process_zero() and (out / sub).exists():
        shutil.rmtree(out / sub)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(out / sub))  # every rank: ZeRO gathers the weights, rank 0 writes
    if trainer.is_world_process_zero():
        _save(cfg, trainer, tokenizer, out, sub, src, summary, train_section)
    return summary


def _save(cfg: TrainConfig, trainer: Any, tokenizer: Any, out: Path, sub: str, src: ModelSource,
          summary: dict[str, Any], train_section: dict[str, Any] | None) -> None:
    tokenizer.save_pretrained(str(out / sub))
    (out / sub / "training_args.bin").unlink(missing_ok=True)  # a pickle; config.yaml says the same
    manifest: dict[str, Any] = {
        "method": cfg.method,
        "mode": cfg.mode,
        "tokenizer": sub,
        "init_from": str(Path(cfg.init_from).resolve()) if cfg.init_from else None,
        "merged": None,
    }
    if cfg.mode == "lora":
        manifest.update(base=src.base, revision=src.revision, adapters=[*src.adapters, str((out / sub).resolve())])
    else:
        manifest.update(base=str((out / sub).resolve()), revision=None, adapters=[])
    stacked = cfg.mode == "lora" and bool(src.adapters)
    if stacked and not cfg.merge:
        # This adapter applies to base + the init_from adapters, not to the base alone: a loader
        # given only (base, adapter/) would build the wrong model, so the merged model is saved.
        summary.setdefault("data_notes", []).append(
            "merged/ written automatically: adapter/ was trained on top of the init_from model, "
            "so it does not apply to the bare base")
    if cfg.merge or stacked:
        if cfg.mode == "lora":
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(str(out / "merged"))
            tokenizer.save_pretrained(str(out / "merged"))
            manifest["merged"] = "merged"
        else:
            summary.setdefault("data_notes", []).append("--merge: full fine-tuning has nothing to merge; see model/")
    outputs.write_manifest(out / MANIFEST, manifest)
    section = train_section if train_section is not None else cfg.model_dump(mode="json")
    outputs.write_resolved_config(out / "config.yaml", section)
    if cfg.plot:
        title = f"{cfg.method} ({cfg.mode}) on {Path(summary['data']).name}"
        if outputs.plot_curve(out / "training_curve.png", trainer.state.log_history, title):
            summary["curve"] = str(out / "training_curve.png")
    outputs.write_metrics(out / "metrics.json", trainer.state.log_history, summary)


def _split(cfg: TrainConfig, records: list[dict[str, Any]]) -> Any:
    from escpro.train.split import split_by_tree

    try:
        return split_by_tree(records, cfg.val_size, cfg.seed)
    except ValueError as exc:
        raise ConfigError(f"train: {exc}") from None


def _point_trackers(trainer: Any, out: Path) -> dict[str, str]:
    """TensorBoard logs to out/tensorboard (transformers' default is buried under checkpoints/)."""
    where: dict[str, str] = {}
    for cb in trainer.callback_handler.callbacks:
        if type(cb).__name__ == "TensorBoardCallback":
            cb.logging_dir = str(out / "tensorboard")
            where["tensorboard"] = cb.logging_dir
    return where


def _sha(text: str | None) -> str:
    from escpro.atomic import sha256_text

    return sha256_text(text or "")


def _records_sha(records: list[dict[str, Any]]) -> str:
    import hashlib
    import json

    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced; `summary` is everything out/metrics.json holds."""

    method: str
    mode: str
    out: Path
    records: int
    steps: int
    seconds: float
    train_loss: float | None
    first_loss: float | None
    last_loss: float | None
    summary: dict[str, Any]


def run_train(cfg: TrainConfig, *, train_section: dict[str, Any] | None = None,
              progress: bool = False) -> TrainResult:
    """THE train stage entry point (the command and the demo call it): typed options (the
    validated `train` config section) in, a typed result out."""
    s = train(cfg, train_section=train_section, progress=progress)
    return TrainResult(method=s["method"], mode=s["mode"], out=Path(s["out"]), records=s["records"],
                       steps=s["steps"], seconds=s["seconds"], train_loss=s.get("train_loss"),
                       first_loss=s.get("first_loss"), last_loss=s.get("last_loss"), summary=s)
