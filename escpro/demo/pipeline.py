"""`escpro demo` as a library call: bundled seeds -> build -> extract -> stats -> SFT -> DPO -> eval.

Each step calls the library entry point of its stage (escpro.build.run_build,
escpro.extract.run.run_extract, escpro.extract.stats_run.run_stats, escpro.train.run.run_train
(twice: SFT, then DPO from the SFT model), escpro.evaluate.run.evaluate) with the demo's small
settings, and leaves in OUT exactly what the printed command would have left. OUT/config.yaml holds the resolved
config, so every printed command can be pasted to redo a step by hand. The steps themselves live in
escpro.demo.stages; this module resolves the backend and the config, runs them in order and writes
the summary.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from escpro.config import AppConfig, dump_config
from escpro.data import DEMO_SEEDS
from escpro.demo import stages
from escpro.demo.config import EMBEDDED, DemoSettings, load_demo_config
from escpro.demo.report import query_command, sample_pair
from escpro.demo.steps import StepRecord, Steps
from escpro.errors import ConfigError, EscproError

BACKENDS = ("auto", "llamacpp", "transformers", "vllm", "sim")
# What a demo leaves in OUT (and what --overwrite removes; nothing else is touched).
OUTPUTS = ("config.yaml", "testset.jsonl", "trees.duckdb", "trees.duckdb.wal", "esc-pro", "stats",
           "sft", "train", "eval", "summary.json", "endpoints.json", "serve-logs")
LLAMACPP_NOTE = ("llama.cpp is not installed (opt in with pip install -e '.[llamacpp]'; it compiles for "
                 "~10 minutes): the roles run on the transformers backend instead")


@dataclass
class DemoOptions:
    out: Path
    backend: str = "auto"
    seeds: int | None = None
    random_seed: int = 0
    config: Path | None = None
    overwrite: bool = False
    progress: bool = True
    echo: Callable[[str], None] = print


def resolve_backend(requested: str) -> tuple[str, list[str]]:
    """The backend the roles will use, and notes for the user (llama.cpp missing)."""
    from escpro.bundled_model import llamacpp_available

    if requested not in BACKENDS:
        raise ConfigError(f"--backend {requested}: use one of {', '.join(BACKENDS)}")
    if requested == "sim":
        return "sim", []
    if requested == "vllm":  # escpro.demo.served: checked (one clear line) when the server starts
        return "vllm", []
    if requested in ("auto", "llamacpp"):
        if llamacpp_available():
            return "llamacpp", []
        return "transformers", [LLAMACPP_NOTE] if requested == "llamacpp" else [
            "llama.cpp not installed: using the transformers backend (pip install -e '.[llamacpp]' "
            "runs the roles on llama.cpp: faster per call, about as fast for the demo)"]
    return "transformers", []


def prepare_out(out: Path, overwrite: bool) -> None:
    """Create OUT and prove it is writable; refuse to mix with an earlier demo unless asked."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".escpro-write-test"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: not writable ({exc.strerror or exc})") from None
    old = [name for name in OUTPUTS if (out / name).exists()]
    if old and not overwrite:
        raise ConfigError(f"--out {out} already holds demo outputs ({', '.join(old)}); pass --overwrite "
                          "or choose another --out")
    for name in old:
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def _bind_embedded(cfg: AppConfig, kind: str, gguf: Path | None, hf_dir: Path | None) -> AppConfig:
    """Replace the `embedded` placeholders by the demo's model for the chosen backend."""
    from escpro.bundled_model import template_path

    updates: dict[str, Any] = {}
    for role in ("seeker", "supporter", "strategy", "reward"):
        b = cfg.roles.binding(role)
        if b.model != EMBEDDED:
            continue
        if kind == "llamacpp":
            updates[role] = b.model_copy(update={"backend": "llamacpp", "model": str(gguf), "gguf_file": None})
        elif kind == "vllm":
            continue  # escpro.demo.served.bind_served
        else:
            updates[role] = b.model_copy(update={"backend": "transformers", "model": str(hf_dir)})
    roles = cfg.roles.model_copy(update=updates)
    if kind == "vllm":
        from escpro.demo.served import bind_served

        roles = bind_served(cfg, EMBEDDED).roles
    train = cfg.train
    if train.model == EMBEDDED:
        train = train.model_copy(update={"model": str(hf_dir)})
    if train.chat_template == EMBEDDED:
        train = train.model_copy(update={"chat_template": str(template_path())})
    return cfg.model_copy(update={"roles": roles, "train": train})


def _check_placeholders(cfg: AppConfig) -> None:
    """With the simulator there is no embedded model: a config naming it is a user error."""
    for role in ("seeker", "supporter", "strategy", "reward"):
        if cfg.roles.binding(role).model == EMBEDDED and cfg.roles.binding(role).backend != "sim":
            raise ConfigError(f"roles.{role}.model: '{EMBEDDED}' needs a real backend, not --backend sim")
    if cfg.train.model == EMBEDDED or cfg.train.chat_template == EMBEDDED:
        raise ConfigError(f"train: '{EMBEDDED}' needs a real backend; with --backend sim train the tiny model")


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run the whole demo; returns the summary also written to OUT/summary.json."""
    t_start = time.perf_counter()
    kind, notes = resolve_backend(opts.backend)
    demo, cfg = _settings(opts, kind)
    out = opts.out.resolve()
    prepare_out(out, opts.overwrite)
    for n in notes:
        opts.echo(f"note: {n}")
    steps = Steps(step_names(kind, demo), opts.echo)
    model = None
    if kind != "sim":
        model = steps.run("model", stages.MODEL_TITLE, partial(stages.model_step, kind=kind, echo=opts.echo))
        cfg = _bind_embedded(cfg, kind, model.gguf, model.hf_dir)
    run = stages.DemoRun(kind=kind, demo=demo, cfg=cfg, out=out, files=stages.DemoFiles.under(out),
                         random_seed=opts.random_seed, progress=opts.progress, echo=opts.echo)
    run.files.config.write_text(dump_config(cfg), encoding="utf-8")

    steps.run("build", stages.BUILD_TITLE.format(seeds=demo.seeds), partial(stages.build_step, run))
    steps.run("extract", stages.EXTRACT_TITLE, partial(stages.extract_step, run))
    steps.run("stats", stages.STATS_TITLE, partial(stages.stats_step, run))
    if demo.sft:
        title = stages.SFT_TITLE.format(steps=stages.sft_config(run).max_steps)
        steps.run("sft", title, partial(stages.sft_step, run))
    title = stages.TRAIN_TITLE.format(steps=cfg.train.max_steps, method=cfg.train.method.upper(),
                                      start=" from the SFT model" if demo.sft else "")
    base = steps.run("train", title, partial(stages.train_step, run))
    scores = steps.run("eval", stages.EVAL_TITLE, partial(stages.eval_step, run, base=base))

    summary = _summary(opts, run, notes, model, steps.records, scores, time.perf_counter() - t_start)
    run.files.summary.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n",
                                 encoding="utf-8")
    return summary


def _settings(opts: DemoOptions, kind: str) -> tuple[DemoSettings, AppConfig]:
    """The demo's config (bundled, with --config over it) and settings, --seeds applied."""
    demo, cfg, _ = load_demo_config("sim" if kind == "sim" else "real", opts.config)
    if opts.seeds is not None:
        demo = demo.model_copy(update={"seeds": opts.seeds})
    if kind == "sim":
        _check_placeholders(cfg)
    return demo, cfg


def step_names(kind: str, demo: DemoSettings) -> list[str]:
    """The steps this demo runs, in order (the `[i/n]` of the headers)."""
    return ((["model"] if kind != "sim" else []) + ["build", "extract", "stats"]
            + (["sft"] if demo.sft else []) + ["train", "eval"])


def _summary(opts: DemoOptions, run: stages.DemoRun, notes: list[str], model: stages.DemoModel | None,
             records: list[StepRecord], scores: stages.EvalOutcome, seconds: float) -> dict[str, Any]:
    """summary.json: what ran, where everything went, a sample pair, the scores, a query to paste."""
    pair = sample_pair(run.files.esc_pro / "pairs.jsonl")
    return {
        "backend": run.kind,
        "requested_backend": opts.backend,
        "notes": notes,
        "model": {"gguf": str(model.gguf), "hf_dir": str(model.hf_dir)} if model else None,
        "out": str(run.out),
        "seeds": {"path": str(DEMO_SEEDS), "used": run.demo.seeds},
        "random_seed": opts.random_seed,
        "demo": run.demo.model_dump(),
        "steps": [r.as_dict() for r in records],
        "total_seconds": round(seconds, 2),
        "files": run.files.as_dict(sft=run.demo.sft),
        "sample_pair": pair,
        "query": query_command(run.files.db, pair),
        "scores": scores.runs,
        "sample_prediction": scores.sample_prediction,
    }


__all__ = ["DemoOptions", "run_demo", "resolve_backend", "EscproError"]
