#!/usr/bin/env python
"""Reproduce the CSO paper's data-volume analysis (section 5.4, Figure 4): LoRA CSO trained on the
first 0 / 100 / 200 / 300 / 400 / 423 ESC-Pro dialogues, with LoRA SFT on all dialogues as the
dashed reference line; then a table and a four-panel plot (Q, B, Qw, R-L against dialogues).

    python scripts/reproduce_data_volume.py --esc-pro esc-pro/ --testset data/extes_test.jsonl \
        --backbones llama --out repro-volume/ --dry-run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reproduce_common import (
    BACKBONES,
    Plan,
    backbones,
    check_inputs,
    common_args,
    escpro,
    eval_argv,
    finish,
    recipe,
    train_argv,
    trained_model_args,
)

VOLUMES = [0, 100, 200, 300, 400, 423]  # paper section 5.4


def plot(out_root: Path, bbs: list[str], volumes: list[int]) -> None:
    """Figure-4-style panels from the runs' scores.json (percent for Q, Qw, R-L)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("Q", "Q (macro-F1 %)", 100), ("B", "B (bias, lower better)", 1), ("Qw", "Qw (weighted-F1 %)", 100),
            ("rouge_l", "R-L %", 100)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    summary = {}
    for bb in bbs:
        label = BACKBONES[bb][2]
        pts = []
        for n in volumes:
            f = out_root / "runs" / bb / f"cso_{n}" / "scores.json"
            if f.exists():
                pts.append((n, json.loads(f.read_text())))
        sft_f = out_root / "runs" / bb / "sft_all" / "scores.json"
        sft = json.loads(sft_f.read_text()) if sft_f.exists() else None
        summary[label] = {"cso": {n: {k: s.get(k) for k, _, _ in keys} for n, s in pts},
                          "sft": {k: sft.get(k) for k, _, _ in keys} if sft else None}
        for ax, (k, title, scale) in zip(axes, keys):
            xs = [n for n, s in pts if s.get(k) is not None]
            ys = [s[k] * scale for n, s in pts if s.get(k) is not None]
            line = ax.plot(xs, ys, marker="o", label=f"{label} CSO")[0]
            if sft and sft.get(k) is not None:
                ax.axhline(sft[k] * scale, linestyle="--", color=line.get_color(), label=f"{label} SFT")
            ax.set_title(title)
            ax.set_xlabel("ESC-Pro dialogues")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    (out_root / "report").mkdir(parents=True, exist_ok=True)
    fig.savefig(out_root / "report" / "data_volume.png", dpi=120)
    (out_root / "report" / "data_volume.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out_root / 'report' / 'data_volume.png'}")


def build_plan(args) -> Plan:
    volumes = [int(v) for v in args.volumes.split(",")]
    bbs = backbones(args.backbones)
    plan = Plan(f"CSO data-volume curve ({', '.join(map(str, volumes))} dialogues)")
    check_inputs(plan, args.esc_pro, args.testset)
    dirs = []
    for bb in bbs:
        hf_id, prefix, label = BACKBONES[bb]
        for n in volumes:
            out = args.out / "runs" / bb / f"cso_{n}"
            if n == 0:  # no training: the untuned model
                plan.add(f"{label}: 0 dialogues (untuned)",
                         eval_argv(args, ["--model", hf_id], args.testset, out, label, "CSO@0"),
                         creates=out / "scores.json")
            else:
                model_out = args.out / "models" / f"{prefix}_lora_dpo_{n}"
                plan.add(f"{label}: train LoRA CSO on the first {n} dialogues",
                         train_argv(args.gpus, "lora", recipe(plan, prefix, "lora", "dpo"), args.esc_pro, model_out,
                                    ["--dialogues", str(n)]),
                         creates=model_out / "escpro_train.json")
                plan.add(f"{label}: eval LoRA CSO@{n}",
                         eval_argv(args, trained_model_args(hf_id, "lora", model_out), args.testset, out, label,
                                   f"CSO@{n}", "LoRA"),
                         creates=out / "scores.json")
            dirs.append(out)
        model_out = args.out / "models" / f"{prefix}_lora_sft_all"
        out = args.out / "runs" / bb / "sft_all"
        plan.add(f"{label}: train LoRA SFT on all dialogues (dashed reference)",
                 train_argv(args.gpus, "lora", recipe(plan, prefix, "lora", "sft"), args.esc_pro, model_out),
                 creates=model_out / "escpro_train.json")
        plan.add(f"{label}: eval LoRA SFT",
                 eval_argv(args, trained_model_args(hf_id, "lora", model_out), args.testset, out, label, "SFT", "LoRA"),
                 creates=out / "scores.json")
        dirs.append(out)
    plan.add("table", [*escpro(), "eval", "report", *map(str, dirs), "--out", str(args.out / "report")])
    plan.add(f"plot {args.out / 'report' / 'data_volume.png'}", [],
             python=lambda: plot(args.out, bbs, volumes))
    return plan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(p)
    p.add_argument("--esc-pro", type=Path, default=Path("esc-pro"), help="`escpro extract` output directory.")
    p.add_argument("--volumes", default=",".join(map(str, VOLUMES)), help="Dialogue counts (0 = untuned).")
    args = p.parse_args(argv)
    return finish(build_plan(args), args)


if __name__ == "__main__":
    sys.exit(main())
