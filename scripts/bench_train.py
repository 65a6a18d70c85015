"""Side-by-side timings of `escpro train` on the tiny CPU model, in one process and one run:
reference log-probs precomputed (cache miss), reused from the cache (hit), computed on the fly,
and LoRA vs full fine-tuning. Ratios matter, not absolute seconds (2 shared cores here).

    OMP_NUM_THREADS=1 python scripts/bench_train.py [--dialogues 24] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "train"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dialogues", type=int, default=24)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()

    from fixtures import make_extract_dir

    from escpro.config import load_config
    from escpro.train.run import train

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = make_extract_dir(tmp / "extract", n_dialogues=args.dialogues)
    recipe = REPO / "configs" / "train" / "tiny-cpu.yaml"

    def run(name: str, **over) -> dict:
        over = {"data": str(data), "out": str(tmp / name), "max_steps": args.steps,
                "ref_cache_dir": str(tmp / "refcache"), **over}
        t = time.perf_counter()
        s = train(load_config(recipe, {"train": over}).train)
        return {"run": name, "seconds": round(time.perf_counter() - t, 2), "steps": s["steps"],
                "records": s["records"], "ref_cache": (s["ref_cache"] or {}).get("hits")}

    run("warmup", method="sft", max_steps=1)  # imports and first-call costs out of the comparison
    rows = [
        run("dpo-lora-onthefly", method="dpo"),
        run("dpo-lora-precompute-miss", method="dpo", precompute_ref_log_probs=True),
        run("dpo-lora-precompute-hit", method="dpo", precompute_ref_log_probs=True),
        run("dpo-full-onthefly", method="dpo", mode="full"),
        run("dpo-full-precompute-miss", method="dpo", mode="full", precompute_ref_log_probs=True,
            ref_cache_dir=str(tmp / "refcache-full")),
        run("dpo-full-precompute-hit", method="dpo", mode="full", precompute_ref_log_probs=True,
            ref_cache_dir=str(tmp / "refcache-full")),
    ]
    base = rows[0]["seconds"]
    for r in rows:
        r["vs_onthefly_lora"] = round(r["seconds"] / base, 2)
    print("\n# bench_train (tiny model, one process)")
    for r in rows:
        print(f"{r['run']:28s} {r['seconds']:7.2f} s  x{r['vs_onthefly_lora']:.2f}  cache hits={r['ref_cache']}")
    print("BENCH_JSON " + json.dumps({"dialogues": args.dialogues, "steps": args.steps, "rows": rows}))


if __name__ == "__main__":
    main()
