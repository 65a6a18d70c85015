"""One training run, end to end: plan, launch, tokenize, load, build the trainer, train, save.

Each step is a function of the previous steps' typed results (plan.TrainPlan, launch.Launch,
inputs.TokenizedData / Models, trainers.BuiltTrainer); heavy imports happen only once the plan
holds, so bad input stops before any model is loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escpro.errors import ConfigError
from escpro.train import outputs
from escpro.train.config import TrainConfig
from escpro.train.data import TrainData
from escpro.train.launch import Launch, choose_device, ensure_dist_env, world_size
from escpro.train.plan import make_plan

if TYPE_CHECKING:
    from escpro.train.inputs import TokenizedData
    from escpro.train.refcache import RefLogpCache
    from escpro.train.trainers import BuiltTrainer


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
    plan = make_plan(cfg)
    assert plan.data is not None
    launch = prepare_launch(cfg, plan.deepspeed_config)

    # The heavy imports, once the plan holds (torch came with the device check), before requiet().
    import datasets  # noqa: F401

    from escpro.console import requiet
    from escpro.train.inputs import load_models, ref_cache, tokenize_data
    from escpro.train.trainers import make_trainer

    requiet()  # some libraries reset their logger levels on import
    tokenized = tokenize_data(cfg, plan.data)
    models = load_models(cfg, tokenized.source, use_cpu=launch.use_cpu)
    cache = ref_cache(cfg, plan.data, tokenized, models)
    built = make_trainer(cfg, launch, tokenized, models, cache, progress=progress)
    result = built.trainer.train(resume_from_checkpoint=launch.resume)
    if tokenized.val_records:
        built.trainer.evaluate()  # the final model's eval numbers, whatever eval_steps was
    summary = summarize(cfg, plan.data, launch, tokenized, built, cache, train_loss=result.training_loss,
                        seconds=round(time.time() - t0, 2))
    outputs.save_run(cfg, built.trainer, tokenized.tokenizer, tokenized.source, launch.out, summary, train_section)
    return summary


def prepare_launch(cfg: TrainConfig, deepspeed: dict[str, Any] | None) -> Launch:
    """Process group, device, run directory and the checkpoint to resume from."""
    dist_env = ensure_dist_env() if deepspeed is not None else {}
    use_cpu = choose_device(cfg.device)
    ws = world_size()
    out = Path(cfg.out) if cfg.out else default_out(cfg)
    out.mkdir(parents=True, exist_ok=True)
    resume = resume_arg(cfg, out / "checkpoints")
    return Launch(out=out, resume=resume, world_size=ws, use_cpu=use_cpu, deepspeed=deepspeed, dist_env=dist_env)


def summarize(cfg: TrainConfig, data: TrainData, launch: Launch, tokenized: TokenizedData, built: BuiltTrainer,
              cache: RefLogpCache | None, *, train_loss: float, seconds: float) -> dict[str, Any]:
    """The run's summary (metrics.json's `summary`, the command's output)."""
    trainer, ds_config = built.trainer, launch.deepspeed
    split = tokenized.split
    summary: dict[str, Any] = {
        "method": cfg.method,
        "mode": cfg.mode,
        "records": len(tokenized.records),
        "steps": trainer.state.global_step,
        "train_loss": train_loss,
        "seconds": seconds,
        "world_size": launch.world_size,
        "deepspeed_zero_stage": (ds_config["zero_optimization"].get("stage")
                                 if getattr(trainer, "is_deepspeed_enabled", False) and ds_config else None),
        "dist_env_set": sorted(launch.dist_env),
        "gradient_accumulation": built.args.gradient_accumulation_steps,
        "truncation": tokenized.truncation,
        "fold_system": tokenized.fold,
        "data": str(data.path),
        "data_notes": data.notes,
        "validation": {"records": len(tokenized.val_records), "trees": split.val_groups, "of_trees": split.groups,
                       "val_size": cfg.val_size} if cfg.val_size else None,
        "report_to": cfg.report_targets,
        "tracking": built.tracking,
        "ref_cache": None if cache is None else {"key": cache.key, "dir": str(cache.dir), "hits": cache.hits,
                                                 "misses": cache.misses},
        "out": str(launch.out),
    }
    losses = [r["loss"] for r in outputs.step_rows(trainer.state.log_history)]
    if losses:
        summary["first_loss"], summary["last_loss"] = losses[0], losses[-1]
    summary.update(outputs.final_eval(trainer.state.log_history))
    return summary


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
