"""What a run leaves behind: metrics.json (TRL's log history), a PNG training curve, the resolved
config and the manifest that says how to rebuild the trained model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from escpro import atomic

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
