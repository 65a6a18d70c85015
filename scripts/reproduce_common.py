"""Shared plumbing of the paper-reproduction drivers (scripts/reproduce_*.py).

A driver builds a Plan: an ordered list of shell commands over `escpro` (train, eval run,
eval report, extract), each with a one-line purpose. `--dry-run` prints the plan (and notes
missing inputs or recipes) without running anything; otherwise steps run one after another and
the first failure stops the driver with its exit code. Steps whose output already exists are
skipped, so an interrupted reproduction resumes where it stopped.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Backbones of the paper (Table 2): HF id and the prefix of configs/train/<prefix>_<mode>_<method>.yaml
BACKBONES = {
    "llama": ("meta-llama/Llama-3.1-8B-Instruct", "llama31-8b", "LLaMA-3.1-8B-Instruct"),
    "qwen": ("Qwen/Qwen2.5-7B-Instruct", "qwen25-7b", "Qwen-2.5-7B-Instruct"),
    "gemma": ("google/gemma-2-9b-it", "gemma2-9b", "Gemma-2-9b-it"),
}
METHOD_LABEL = {"sft": "SFT", "dpo": "CSO", "simpo": "CSO-SimPO", "ipo": "CSO-IPO", "kto": "CSO-KTO", "orpo": "CSO-ORPO"}
MODE_LABEL = {"full": "Full", "lora": "LoRA"}


@dataclass
class Step:
    purpose: str
    argv: list[str]
    creates: Path | None = None  # skip the step when this exists
    python: object = None  # a callable run in-process instead of argv (plots)

    def shell(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv) if self.argv else f"(in-process) {self.purpose}"


@dataclass
class Plan:
    title: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, purpose: str, argv: list[str], creates: Path | None = None, python=None) -> None:
        self.steps.append(Step(purpose, [str(a) for a in argv], creates, python))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def print(self) -> None:
        print(f"# {self.title}: {len(self.steps)} steps")
        for n in self.notes:
            print(f"# NOTE: {n}")
        for i, s in enumerate(self.steps, 1):
            done = " [exists, will skip]" if s.creates and s.creates.exists() else ""
            print(f"\n# [{i}/{len(self.steps)}] {s.purpose}{done}")
            print(s.shell())

    def run(self) -> int:
        for i, s in enumerate(self.steps, 1):
            if s.creates and s.creates.exists():
                print(f"[{i}/{len(self.steps)}] skip (exists): {s.purpose}", flush=True)
                continue
            print(f"[{i}/{len(self.steps)}] {s.purpose}\n  $ {s.shell()}", flush=True)
            if s.python is not None:
                s.python()
                continue
            rc = subprocess.call(s.argv)
            if rc != 0:
                print(f"step {i} failed with exit code {rc}: {s.shell()}", file=sys.stderr)
                return rc
        return 0


def escpro() -> list[str]:
    return [sys.executable, "-m", "escpro"]


def common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("repro"), help="Output root (models, runs, report).")
    p.add_argument("--backbones", default="llama,qwen,gemma", help="Comma list of llama, qwen, gemma.")
    p.add_argument("--testset", type=Path, default=Path("data/extes_test.jsonl"),
                   help="Test set JSONL from `escpro eval testset` (ExTES test split).")
    p.add_argument("--kang-testset", type=Path, default=None,
                   help="Optional Kang et al.-style strategy test set (`escpro eval testset --kang`).")
    p.add_argument("--backend", default="vllm-offline", help="Generation backend for eval (GPU: vllm-offline).")
    p.add_argument("--gpus", type=int, default=8, help="GPUs for training (accelerate + DeepSpeed ZeRO-2 when > 1).")
    p.add_argument("--dry-run", action="store_true", help="Print the plan; run nothing.")


def backbones(arg: str) -> list[str]:
    names = [b.strip() for b in arg.split(",") if b.strip()]
    bad = [b for b in names if b not in BACKBONES]
    if bad:
        raise SystemExit(f"unknown backbone(s) {', '.join(bad)}: use {', '.join(BACKBONES)}")
    return names


def recipe(plan: Plan, prefix: str, mode: str, method: str) -> Path:
    path = REPO / "configs" / "train" / f"{prefix}_{mode}_{method}.yaml"
    if not path.exists():
        plan.note(f"recipe {path.relative_to(REPO)} not found (needed by a train step)")
    return path


def train_argv(gpus: int, mode: str, cfg: Path, data: Path, out: Path, extra: list[str] | None = None) -> list[str]:
    base = ["train", "--config", str(cfg), "--data", str(data), "--out", str(out), *(extra or [])]
    if gpus > 1:  # one process per GPU; the recipe's deepspeed section turns on ZeRO-2
        return ["accelerate", "launch", "--num_processes", str(gpus), "-m", "escpro", *base]
    return [*escpro(), *base]


def trained_model_args(hf_id: str, mode: str, out: Path) -> list[str]:
    """How `escpro eval run` loads what `escpro train` wrote (adapter/ for LoRA, model/ for full)."""
    if mode == "lora":
        return ["--model", hf_id, "--adapter", str(out / "adapter")]
    return ["--model", str(out / "model")]


def eval_argv(args, model_args: list[str], testset: Path, out: Path, name: str, method: str,
              mode: str = "-", extra: list[str] | None = None) -> list[str]:
    return [*escpro(), "eval", "run", *model_args, "--backend", args.backend, "--testset", str(testset),
            "--out", str(out), "--name", name, "--method", method, "--mode", mode, *(extra or [])]


def check_inputs(plan: Plan, *paths: Path | None) -> None:
    for p in paths:
        if p is not None and not Path(p).exists():
            plan.note(f"input {p} does not exist yet")


def finish(plan: Plan, args) -> int:
    if args.dry_run:
        plan.print()
        return 0
    return plan.run()
