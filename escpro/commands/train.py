"""`escpro train`: train a supporter model with SFT, DPO (CSO), IPO, SimPO, KTO or ORPO."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from escpro.cli_common import emit, escpro_command
from escpro.errors import ConfigError
from escpro.train.methods import METHODS

HELP = """Train a supporter model on ESC-Pro data from a YAML recipe.

\b
Recipes: configs/train/<backbone>_<mode>_<method>.yaml carry the paper's Table 13/14 values;
configs/train/tiny-cpu.yaml trains a tiny random model on this CPU in seconds.
Flags and KEY=VALUE overrides (any train key, LLaMA-Factory aliases too: pref_beta=0.1,
simpo_gamma=0.5, kto_chosen_weight=1.0, kto_rejected_weight=0.5, lora_rank=16) win over the recipe.

\b
Examples:
  escpro train --config configs/train/tiny-cpu.yaml --method dpo --data runs/extract --out runs/dpo
  escpro train --config configs/train/qwen25-7b_lora_dpo.yaml --check
  escpro train --config configs/train/tiny-cpu.yaml --method dpo init_from=runs/sft --data runs/extract

\b
Multi-GPU (DeepSpeed ZeRO-2): see docs/train.md, e.g.
  accelerate launch --num_processes 8 -m escpro train --config configs/train/llama31-8b_full_dpo.yaml ...

Outputs in --out: adapter/ or model/, merged/ (--merge), config.yaml, metrics.json,
training_curve.png, escpro_train.json (how to reload the model).
"""


def _overrides(cli: dict[str, Any], extra: tuple[str, ...], config_path: Path | None) -> dict[str, Any]:
    """Command-line values, which win over the recipe even when one side uses an alias."""
    from escpro.train.config import ALIASES, parse_overrides
    from escpro.yamlfile import read_yaml

    try:
        kv = parse_overrides(extra)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    kv = {ALIASES.get(k, k): v for k, v in kv.items()}
    kv.update({k: v for k, v in cli.items() if v is not None})
    recipe = (read_yaml(config_path).get("train") or {}) if config_path else {}
    if isinstance(recipe, dict):
        for alias, name in ALIASES.items():
            if alias in recipe and name in kv:
                kv[alias] = kv[name]
    return kv


@escpro_command(name="train", config=True, help=HELP, context_settings={"show_default": True})
@click.argument("overrides", nargs=-1)
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="Training method (dpo = CSO). Overrides the recipe.")
@click.option("--mode", type=click.Choice(["lora", "full"]), default=None, help="LoRA or full fine-tuning.")
@click.option("--model", default=None, help="Base model: local dir, HF id, or 'tiny'.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="An `escpro extract` output dir (picks pairs/kto/sft.jsonl by method) or a .jsonl file.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output directory.")
@click.option("--dialogues", type=int, default=None, help="Train on the first N ESC-Pro dialogues only.")
@click.option("--max-steps", type=int, default=None, help="Stop after N optimizer steps.")
@click.option("--resume-from-checkpoint", "resume", is_flag=False, flag_value="last", default=None,
              help="Continue an interrupted run: the last checkpoint in OUT/checkpoints, or a given one.")
@click.option("--merge", is_flag=True, default=None, help="Also save the LoRA adapter merged into the base.")
@click.option("--check", is_flag=True, help="Resolve and validate the recipe (and data) without loading weights.")
@click.option("--no-progress", is_flag=True, help="No progress bar (--json implies it).")
def train(overrides, method, mode, model, data, out, dialogues, max_steps, resume, merge, check, no_progress,
          config_path, as_json, log_level):  # noqa: ARG001
    from escpro.config import load_config

    cli = {
        "method": method, "mode": mode, "model": model,
        "data": str(data) if data else None, "out": str(out) if out else None,
        "dialogues": dialogues, "max_steps": max_steps, "merge": merge,
        "resume": (True if resume == "last" else resume),
    }
    lf = _llamafactory(config_path)
    kv = _overrides(cli, overrides, None if lf else config_path)
    if lf is not None:  # a flat LLaMA-Factory YAML: its keys become the train section
        cfg_all = load_config(None, {"train": {**lf.train, **kv}})
    else:
        cfg_all = load_config(config_path, {"train": kv} if kv else None)
    cfg = cfg_all.train
    section = cfg_all.model_dump(mode="json")["train"]

    from escpro.train.plan import resolve_plan

    lf_notes = [f"{config_path} is a LLaMA-Factory YAML: {n}" for n in (lf.notes if lf else [])]
    if check:
        plan, _ = resolve_plan(cfg)
        plan["notes"] = lf_notes + plan["notes"]
        plan["ok"] = True
        emit(plan, as_json, lambda: _plan_text(config_path, plan))
        return
    from escpro.train.run import run_train

    for note in lf_notes:
        click.echo(f"note: {note}", err=True)

    # stdout carries only escpro's result (one JSON document with --json): anything a library
    # prints there during the run goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        summary = run_train(cfg, train_section=section, progress=not (no_progress or as_json)).summary
    emit(summary, as_json, lambda: _summary_text(summary))


def _llamafactory(config_path: Path | None) -> Any:
    if config_path is None:
        return None
    from escpro.train.lf_yaml import convert, is_llamafactory
    from escpro.yamlfile import read_yaml

    data = read_yaml(config_path)
    return convert(data, str(config_path)) if is_llamafactory(data) else None


def _plan_text(path: Path | None, plan: dict[str, Any]) -> str:
    lines = [f"ok: {path or 'command line'}: {plan['method']} ({plan['mode']}) via {plan['trainer']}"]
    for key in ("model", "reference", "deepspeed", "batch", "schedule", "loss", "lengths", "lora", "data",
                "validation", "report_to"):
        if plan.get(key) is not None:
            val = plan[key]
            lines.append(f"  {key}: {json.dumps(val) if isinstance(val, dict) else val}")
    lines += [f"  note: {n}" for n in plan.get("notes", [])]
    return "\n".join(lines)


def _summary_text(s: dict[str, Any]) -> str:
    lines = [f"trained {s['method']} ({s['mode']}): {s['steps']} steps on {s['records']} records in {s['seconds']} s"]
    if "first_loss" in s:
        lines.append(f"  loss {s['first_loss']:.4f} -> {s['last_loss']:.4f}")
    if s.get("eval"):
        ev = s["eval"]
        shown = ", ".join(f"{k} {v:.4f}" for k, v in ev.items() if k != "step" and isinstance(v, int | float))
        lines.append(f"  validation ({s['validation']['records']} records): {shown}")
    for name, where in (s.get("tracking") or {}).items():
        lines.append(f"  {name}: {where}")
    if s.get("ref_cache"):
        rc = s["ref_cache"]
        lines.append(f"  reference log-probs: {'cache hit' if rc['hits'] else 'computed and cached'} ({rc['dir']})")
    lines.append(f"  outputs: {s['out']} (metrics.json, training_curve.png, config.yaml)")
    return "\n".join(lines)
