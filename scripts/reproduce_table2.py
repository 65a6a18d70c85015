#!/usr/bin/env python
"""Reproduce the CSO paper's Table 2 (and, with --all-methods, Tables 9-11) on a GPU cluster.

For each backbone: the untuned model and its three decoding baselines (Direct-Refine,
Self-Refine, w/ Example), then SFT and CSO (DPO) in full and LoRA mode trained on ESC-Pro
(`escpro extract` output), each evaluated on the ExTES test set (and the Kang-style strategy
test set if given); finally one report beside the paper's numbers.

    python scripts/reproduce_table2.py --esc-pro esc-pro/ --testset data/extes_test.jsonl \
        --examples data/extes_train.json --out repro/ --dry-run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reproduce_common import (
    BACKBONES,
    METHOD_LABEL,
    MODE_LABEL,
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
    plan = Plan("CSO Table 2" + (" + Tables 9-11" if args.all_methods else ""))
    check_inputs(plan, args.esc_pro, args.testset, args.examples, args.kang_testset)
    methods = ["sft", "dpo"] + (["simpo", "ipo", "kto", "orpo"] if args.all_methods else [])
    testsets = [("extes", args.testset)] + ([("kang", args.kang_testset)] if args.kang_testset else [])
    run_dirs = {name: [] for name, _ in testsets}
    for bb in backbones(args.backbones):
        hf_id, prefix, label = BACKBONES[bb]
        for ts_name, ts in testsets:
            for baseline, method in [("none", "base"), ("direct-refine", "Direct-Refine"),
                                     ("self-refine", "Self-Refine"), ("example", "w/ Example")]:
                if baseline == "example" and not args.examples:
                    plan.note("w/ Example skipped: pass --examples (ExTES training seeds)")
                    continue
                out = args.out / "runs" / ts_name / bb / baseline
                extra = ["--baseline", baseline] + (["--examples", str(args.examples)] if baseline == "example" else [])
                plan.add(f"{label}: {method} on {ts_name}",
                         eval_argv(args, ["--model", hf_id], ts, out, label, method, "-", extra),
                         creates=out / "scores.json")
                run_dirs[ts_name].append(out)
        for mode in ("full", "lora"):
            for method in methods:
                model_out = args.out / "models" / f"{prefix}_{mode}_{method}"
                cfg = recipe(plan, prefix, mode, method)
                plan.add(f"{label}: train {METHOD_LABEL[method]} ({MODE_LABEL[mode]})",
                         train_argv(args.gpus, mode, cfg, args.esc_pro, model_out),
                         creates=model_out / "escpro_train.json")
                for ts_name, ts in testsets:
                    out = args.out / "runs" / ts_name / bb / f"{mode}_{method}"
                    plan.add(f"{label}: eval {METHOD_LABEL[method]} ({MODE_LABEL[mode]}) on {ts_name}",
                             eval_argv(args, trained_model_args(hf_id, mode, model_out), ts, out, label,
                                       METHOD_LABEL[method], MODE_LABEL[mode]),
                             creates=out / "scores.json")
                    run_dirs[ts_name].append(out)
    tables = ["--reference-table", "Table 2"]
    if args.all_methods:
        tables += ["--reference-table", "Table 9", "--reference-table", "Table 10", "--reference-table", "Table 11"]
    for ts_name, dirs in run_dirs.items():
        plan.add(f"report ({ts_name})",
                 [*escpro(), "eval", "report", *map(str, dirs), "--reference", *tables,
                  "--out", str(args.out / "report" / ts_name)])
    return plan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p)
    p.add_argument("--esc-pro", type=Path, default=Path("esc-pro"),
                   help="`escpro extract` output directory (pairs/kto/sft.jsonl).")
    p.add_argument("--examples", type=Path, default=None,
                   help="ExTES training seeds for the w/ Example baseline.")
    p.add_argument("--all-methods", action="store_true", help="Also SimPO, IPO, KTO, ORPO (Tables 9-11).")
    args = p.parse_args(argv)
    return finish(build_plan(args), args)


if __name__ == "__main__":
    sys.exit(main())
