"""What a run leaves behind: metrics.json (TRL's log history), a PNG training curve, the resolved
config and the manifest that says how to rebuild the trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from escpro import atomic
from escpro.train.models import MANIFEST

if TYPE_CHECKING:
    from escpro.train.config import TrainConfig
    from escpro.train.models import ModelSource

CURVE_KEYS = (
    ("loss", "training loss"),
    ("rewards/accuracies", "reward accuracy"),
    ("rewards/margins", "reward margin"),
    ("rewards/chosen", "reward chosen"),
    ("rewards/rejected", "reward rejected"),
)


def step_rows(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-logging-step rows (the final summary row of Trainer.train has train_runtime instead)."""
    return [r for r in log_history if "loss" in r and "step" in r]


EVAL_KEYS = ("eval_loss", "eval_rewards/accuracies", "eval_rewards/margins", "eval_rewards/chosen",
             "eval_rewards/rejected")


def eval_rows(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the validation evaluations (val_size)."""
    return [r for r in log_history if "eval_loss" in r]


def final_eval(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """The last evaluation's numbers for the summary (names without the eval_ prefix's slash)."""
    rows = eval_rows(log_history)
    if not rows:
        return {}
    last = rows[-1]
    return {"eval": {k.replace("eval_", "", 1): last[k] for k in EVAL_KEYS if k in last} | {"step": last.get("step")}}


def write_metrics(path: Path, log_history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    rows = step_rows(log_history)
    doc = {"summary": summary, "steps": rows, "eval": eval_rows(log_history), "log_history": log_history}
    atomic.write_text(path, json.dumps(doc, indent=1, default=float))


def plot_curve(path: Path, log_history: list[dict[str, Any]], title: str) -> bool:
    """Loss (left) and, for preference methods, reward accuracy/margin (right) per step."""
    rows = step_rows(log_history)
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    extra = [(k, lbl) for k, lbl in CURVE_KEYS[1:] if any(k in r for r in rows)]
    fig, axes = plt.subplots(1, 2 if extra else 1, figsize=(11 if extra else 6, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot(steps, [r["loss"] for r in rows], marker="o", ms=3, label="training loss")
    evals = eval_rows(log_history)
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], marker="s", ms=4,
                ls="--", label="validation loss")
        ax.legend(fontsize=8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if extra:
        ax2 = axes[0][1]
        for key, lbl in extra:
            ax2.plot([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r],
                     marker="o", ms=3, label=lbl)
            ek = f"eval_{key}"
            if key in ("rewards/accuracies", "rewards/margins") and any(ek in r for r in evals):
                ax2.plot([r["step"] for r in evals if ek in r], [r[ek] for r in evals if ek in r],
                         marker="s", ms=4, ls="--", label=f"validation {lbl}")
        ax2.set_xlabel("optimizer step")
        ax2.set_title("rewards")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    with atomic.atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return True


def write_resolved_config(path: Path, train_section: dict[str, Any]) -> None:
    header = "# Resolved by `escpro train`; re-run with: escpro train --config <this file>\n"
    atomic.write_text(path, header + yaml.safe_dump({"train": train_section}, sort_keys=False))


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    atomic.write_text(path, json.dumps(manifest, indent=1))


def save_run(cfg: TrainConfig, trainer: Any, tokenizer: Any, src: ModelSource, out: Path,
             summary: dict[str, Any], train_section: dict[str, Any] | None) -> None:
    """The trained weights on every rank (ZeRO gathers them, rank 0 writes), then on rank 0 the
    tokenizer, manifest, merged model, config, curve and metrics; `summary` gains its notes and
    curve path before metrics.json is written."""
    sub = "adapter" if cfg.mode == "lora" else "model"
    if trainer.is_world_process_zero() and (out / sub).exists():
        shutil.rmtree(out / sub)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(out / sub))
    if not trainer.is_world_process_zero():
        return
    tokenizer.save_pretrained(str(out / sub))
    (out / sub / "training_args.bin").unlink(missing_ok=True)  # a pickle; config.yaml says the same
    manifest = _manifest(cfg, out, sub, src)
    manifest["merged"] = _merge(cfg, trainer, tokenizer, out, stacked=cfg.mode == "lora" and bool(src.adapters),
                                summary=summary)
    write_manifest(out / MANIFEST, manifest)
    section = train_section if train_section is not None else cfg.model_dump(mode="json")
    write_resolved_config(out / "config.yaml", section)
    if cfg.plot:
        title = f"{cfg.method} ({cfg.mode}) on {Path(summary['data']).name}"
        if plot_curve(out / "training_curve.png", trainer.state.log_history, title):
            summary["curve"] = str(out / "training_curve.png")
    write_metrics(out / "metrics.json", trainer.state.log_history, summary)


def _manifest(cfg: TrainConfig, out: Path, sub: str, src: ModelSource) -> dict[str, Any]:
    """How to rebuild the trained model: a LoRA adapter stacks on its source's adapters."""
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
    return manifest


def _merge(cfg: TrainConfig, trainer: Any, tokenizer: Any, out: Path, *, stacked: bool,
           summary: dict[str, Any]) -> str | None:
    """Write out/merged when asked, or when the adapter was trained on top of init_from adapters;
    returns the manifest's `merged` entry."""
    if stacked and not cfg.merge:
        # This adapter applies to base + the init_from adapters, not to the base alone: a loader
        # given only (base, adapter/) would build the wrong model, so the merged model is saved.
        summary.setdefault("data_notes", []).append(
            "merged/ written automatically: adapter/ was trained on top of the init_from model, "
            "so it does not apply to the bare base")
    if not (cfg.merge or stacked):
        return None
    if cfg.mode != "lora":
        summary.setdefault("data_notes", []).append("--merge: full fine-tuning has nothing to merge; see model/")
        return None
    merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
    merged.save_pretrained(str(out / "merged"))
    tokenizer.save_pretrained(str(out / "merged"))
    return "merged"
