#!/usr/bin/env python
"""Reproduce the CSO paper's random-negative ablation (section 5.3, Table 4): ESC-Pro-Random
pairs each preferred turn with a reply for a random other strategy; LoRA CSO trained on it is
compared with LoRA SFT and LoRA CSO on ESC-Pro, next to the paper's Table 4.

    python scripts/reproduce_random_ablation.py --db build.duckdb --esc-pro esc-pro/ \
        --endpoints endpoints.json --testset data/extes_test.jsonl --out repro-ablation/ --dry-run
"""

from __future__ import annotations

import argparse
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


def build_plan(args) -> Plan:
    plan = Plan("CSO random-negative ablation (Table 4)")
    check_inputs(plan, args.db, args.esc_pro, args.testset, args.endpoints)
    random_data = args.out / "esc-pro-random"
    extract = [*escpro(), "extract", "--db", str(args.db), "--out", str(random_data), "--ablation", "random",
               "--random-seed", str(args.random_seed)]
    extract += ["--endpoints", str(args.endpoints)] if args.endpoints else ["--backend", args.gen_backend]
    plan.add("build ESC-Pro-Random (a reply for a random other strategy per preferred turn)", extract,
             creates=random_data / "manifest.json")
    dirs = []
    for bb in backbones(args.backbones):
        hf_id, prefix, label = BACKBONES[bb]
        base_out = args.out / "runs" / bb / "base"
        plan.add(f"{label}: untuned", eval_argv(args, ["--model", hf_id], args.testset, base_out, label, "base"),
                 creates=base_out / "scores.json")
        dirs.append(base_out)
        for name, method, data, label_m in [("sft", "sft", args.esc_pro, "SFT"), ("cso", "dpo", args.esc_pro, "CSO"),
                                            ("cso_random", "dpo", random_data, "CSO-Random")]:
            model_out = args.out / "models" / f"{prefix}_lora_{name}"
            plan.add(f"{label}: train LoRA {label_m}",
                     train_argv(args.gpus, "lora", recipe(plan, prefix, "lora", method), data, model_out),
                     creates=model_out / "escpro_train.json")
            out = args.out / "runs" / bb / name
            plan.add(f"{label}: eval LoRA {label_m}",
                     eval_argv(args, trained_model_args(hf_id, "lora", model_out), args.testset, out, label,
                               label_m, "LoRA"),
                     creates=out / "scores.json")
            dirs.append(out)
    plan.add("report beside Table 4", [*escpro(), "eval", "report", *map(str, dirs), "--reference",
                                       "--reference-table", "Table 4", "--out", str(args.out / "report")])
    return plan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(p)
    p.add_argument("--db", type=Path, default=Path("build.duckdb"), help="DuckDB file of the ESC-Pro build.")
    p.add_argument("--esc-pro", type=Path, default=Path("esc-pro"), help="`escpro extract` output (ESC-Pro).")
    p.add_argument("--endpoints", type=Path, default=None, help="Served role models for the random replies.")
    p.add_argument("--gen-backend", default="vllm-offline", help="Backend for the random replies without --endpoints.")
    p.add_argument("--random-seed", type=int, default=0, help="Seed of the random strategy draw.")
    args = p.parse_args(argv)
    return finish(build_plan(args), args)


if __name__ == "__main__":
    sys.exit(main())
