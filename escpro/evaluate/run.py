"""`escpro eval run`: one model (+ adapter, + baseline) over one test set, into a run directory.

Run directory layout:
  predictions.jsonl   one row per item (escpro score reads it), appended chunk by chunk
  run.json            what was run (model, adapter, backend, baseline, test set hash, taxonomy,
                      decoding, counts, timings): the report's row label comes from here
  config.yaml         the resolved eval config
  scores.json         escpro score's JSON for the predictions

A rerun into the same directory resumes: items already in predictions.jsonl are kept, provided
the run's identity (model, adapter, baseline, test set, decoding) matches; otherwise it stops
and asks for --overwrite or another --out, so finished predictions are never mixed or lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from escpro import atomic
from escpro.errors import DataError, EscproError, NotBuiltError
from escpro.evaluate.config import EvalConfig
from escpro.evaluate.generate import Generator, generate_all
from escpro.evaluate.predictions import read_escpro
from escpro.evaluate.scoring import score_items
from escpro.evaluate.testsets import TestItem, read_items
from escpro.roles.base import Sampling
from escpro.seeds.load import file_sha256
from escpro.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


def identity(cfg: EvalConfig, testset_sha: str) -> dict[str, Any]:
    m = cfg.model
    return {
        "backend": m.backend,
        "model": m.model,
        "adapter": m.adapter,
        "gguf_file": m.gguf_file,
        "base_url": m.base_url,
        "baseline": cfg.baseline,
        "examples": cfg.examples,
        "testset_sha256": testset_sha,
        "taxonomy": cfg.taxonomy,
        "temperature": m.temperature,
        "top_p": m.top_p,
        "max_new_tokens": cfg.max_new_tokens,
        "seed": cfg.seed,
    }


def _done_ids(path: Path) -> set[str]:
    done = set()
    if path.exists():
        with path.open("r", encoding="utf-8") as fh:
            for line in fh:
                try:
                    done.add(str(json.loads(line)["id"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a torn last line from an interrupted run: redone
    return done


def _write_json(path: Path, obj: Any) -> None:
    atomic.write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


@dataclass(frozen=True)
class RunDir:
    """A run directory opened for this run: what it must hold (`items`, `identity`) and what is
    left to generate after the predictions already there."""

    out: Path
    identity: dict[str, Any]
    items: list[TestItem]
    todo: list[TestItem]
    resumed: int  # items of this run already in predictions.jsonl

    @property
    def predictions(self) -> Path:
        return self.out / "predictions.jsonl"

    @property
    def run_json(self) -> Path:
        return self.out / "run.json"


@dataclass(frozen=True)
class Generation:
    """What this invocation generated (0 items when everything was resumed)."""

    items: int
    seconds: float


def run_eval(
    cfg: EvalConfig,
    testset: str | Path,
    out: str | Path,
    *,
    name: str | None = None,
    method: str | None = None,
    mode: str | None = None,
    overwrite: bool = False,
    limit: int | None = None,
    model_factory=None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate (or resume) predictions and score them. Returns the run summary (run.json)."""
    tax = load_taxonomy(cfg.taxonomy)
    run = open_run(cfg, tax, testset, out, overwrite=overwrite, limit=limit)
    examples = _examples(cfg, tax)
    label = name or Path(cfg.model.adapter or cfg.model.model or "model").name
    summary: dict[str, Any] = {
        "name": label,
        "method": method or ("base" if cfg.baseline == "none" else cfg.baseline),
        "mode": mode or "-",
        "taxonomy": tax.name,
        "testset": str(testset),
        "identity": run.identity,
        "items": len(run.items),
        "resumed": run.resumed,
    }
    _write_json(run.run_json, summary)
    atomic.write_text(run.out / "config.yaml", yaml.safe_dump({"eval": cfg.model_dump(mode="json")}, sort_keys=False))
    gen = generate(cfg, tax, run, examples, label=label, model_factory=model_factory, progress=progress)
    scores = _score(cfg, tax, run)
    summary.update(_counts(run, gen, scores))
    scores.update({"name": summary["name"], "method": summary["method"], "run_dir": str(run.out)})
    _write_json(run.out / "scores.json", scores)
    _write_json(run.run_json, summary)
    return {**summary, "scores": scores}


def open_run(cfg: EvalConfig, tax: Taxonomy, testset: str | Path, out: str | Path, *,
             overwrite: bool, limit: int | None) -> RunDir:
    """Read the test set and open `out` for it: start afresh (`overwrite`), or resume when the
    directory holds the same run, refusing one with another identity."""
    items = read_items(testset, tax)
    if limit:
        items = items[:limit]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pred_path, run_path = out / "predictions.jsonl", out / "run.json"
    ident = identity(cfg, file_sha256(Path(testset)))
    if overwrite:
        pred_path.unlink(missing_ok=True)
    elif pred_path.exists() and run_path.exists():
        old = json.loads(run_path.read_text(encoding="utf-8")).get("identity")
        if old != ident:
            changed = sorted(k for k in ident if (old or {}).get(k) != ident[k])
            raise EscproError(
                f"{out} holds a different run (differs in {', '.join(changed)}): "
                "use --overwrite or another --out"
            )
    done = _done_ids(pred_path)
    return RunDir(out=out, identity=ident, items=items, todo=[it for it in items if it.id not in done],
                  resumed=len(done & {it.id for it in items}))


def _examples(cfg: EvalConfig, tax: Taxonomy) -> list[Any] | None:
    """The training dialogues the `example` baseline shows the model; None for other baselines."""
    if cfg.baseline != "example":
        return None
    if not cfg.examples:
        raise EscproError("--baseline example needs --examples SEEDS (training dialogues)")
    from escpro.seeds.load import load_seeds

    examples = load_seeds(cfg.examples, taxonomy=tax).dialogues
    if not examples:
        raise DataError(f"{cfg.examples}: no usable example dialogues")
    return examples


def generate(cfg: EvalConfig, tax: Taxonomy, run: RunDir, examples: list[Any] | None, *, label: str,
             model_factory: Any, progress: bool) -> Generation:
    """Generate the items left to do, appending each finished chunk to predictions.jsonl (so an
    interrupted run resumes from the last chunk); the model is loaded only when there is work."""
    from escpro.progress import make_bar

    t0 = time.perf_counter()
    if run.todo:
        model = _make_model(cfg, model_factory)
        gen = _make_generator(cfg, model, tax, examples)
        bar = make_bar(len(run.todo), f"eval {label}", "items", enabled=progress)

        def persist(rows: list[dict[str, Any]]) -> None:
            with run.predictions.open("a", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            bar.update(len(rows))

        async def main() -> None:
            try:
                await generate_all(gen, run.todo, chunk_size=cfg.chunk_size, on_chunk=persist)
            finally:
                await model.aclose()

        try:
            asyncio.run(main())
        finally:
            bar.close()
    return Generation(items=len(run.todo), seconds=time.perf_counter() - t0)


def _make_model(cfg: EvalConfig, model_factory: Any) -> Any:
    if model_factory is None:
        from escpro.roles.backends import make_model

        model_factory = make_model
    try:
        return model_factory(cfg.model)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("escpro."):
            raise
        raise NotBuiltError(
            f"backend '{cfg.model.backend}' is not available in this build ({exc.name})"
        ) from None


def _make_generator(cfg: EvalConfig, model: Any, tax: Taxonomy, examples: list[Any] | None) -> Generator:
    def sampling(max_tokens: int) -> Sampling:
        return Sampling(temperature=cfg.model.temperature, top_p=cfg.model.top_p, max_tokens=max_tokens,
                        seed=cfg.seed)

    return Generator(model, tax, baseline=cfg.baseline, sampling=sampling(cfg.max_new_tokens),
                     feedback_sampling=sampling(cfg.feedback_max_tokens), examples=examples, seed=cfg.seed)


def _score(cfg: EvalConfig, tax: Taxonomy, run: RunDir) -> dict[str, Any]:
    """Score this run's items in predictions.jsonl (resumed and new alike)."""
    wanted = {it.id for it in run.items}
    rows = [r for r in read_escpro(run.predictions, tax) if r.id in wanted]
    return score_items(rows, tax, stem=cfg.rouge_stem, bootstrap=cfg.bootstrap, seed=cfg.seed)


def _counts(run: RunDir, gen: Generation, scores: dict[str, Any]) -> dict[str, Any]:
    """run.json's counts and speed over every row of predictions.jsonl."""
    text = run.predictions.read_text(encoding="utf-8")
    raw = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {
        "generated": gen.items,
        "seconds": round(gen.seconds, 3),
        "items_per_s": round(gen.items / gen.seconds, 3) if gen.items and gen.seconds > 0 else None,
        "completion_tokens": sum(int(r.get("completion_tokens") or 0) for r in raw),
        "failed_calls": sum(1 for r in raw if r.get("status") not in (None, "ok")),
        "invalid": scores["invalid_count"],
    }


@dataclass
class EvalOptions:
    config: EvalConfig
    testset: Path
    out: Path
    name: str | None = None
    method: str | None = None
    mode: str | None = None
    overwrite: bool = False
    limit: int | None = None
    progress: bool = True
    model_factory: Any = None  # tests: a ready generator instead of the configured backend


@dataclass(frozen=True)
class EvalResult:
    """One eval run; `summary` is run.json, `scores` scores.json."""

    name: str
    method: str
    out: Path
    generated: int
    resumed: int
    failed_calls: int
    seconds: float
    scores: dict[str, Any]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary, "scores": self.scores}


def evaluate(opts: EvalOptions) -> EvalResult:
    """THE eval stage entry point (the command and the demo call it)."""
    res = run_eval(opts.config, opts.testset, opts.out, name=opts.name, method=opts.method,
                   mode=opts.mode, overwrite=opts.overwrite, limit=opts.limit,
                   model_factory=opts.model_factory, progress=opts.progress)
    scores = res.pop("scores")
    return EvalResult(name=res["name"], method=res["method"], out=Path(opts.out),
                      generated=res["generated"], resumed=res["resumed"],
                      failed_calls=res["failed_calls"], seconds=res["seconds"], scores=scores,
                      summary=res)
