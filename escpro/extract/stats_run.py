"""`escpro stats` as a library call: `run_stats(StatsOptions) -> StatsResult`.

The paper's Table 5, the strategy distribution over dialogue stages, per-tree search statistics,
role-call costs and (with a classifier) Table 7's toxicity; written as CSV/PNG/JSON when an
output directory is given. The command only parses flags and prints.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escpro.atomic import atomic_open
from escpro.extract import stats as S
from escpro.extract.config import ExtractConfig
from escpro.extract.pipeline import Extraction, collect
from escpro.store import reader

TABLE5_ROWS = [
    ("Dialogues", "dialogues"),
    ("Utterances", "utterances"),
    ("Avg. len. of dialogues", "mean_dialogue_length"),
    ("Avg. len. of utterances", "mean_utterance_words"),
]
TABLE5_COLS = [
    ("Seeds", "seed"), ("ESC-Pro(seeker)", "esc_pro_seeker"), ("ESC-Pro(+)", "esc_pro_preferred"),
    ("ESC-Pro(-)", "esc_pro_non_preferred"), ("ESC-Pro", "esc_pro"),
]


@dataclass
class ToxicityRequest:
    """Table 7 from a local Hugging Face sequence-classification model."""

    model: str
    labels: tuple[str, ...] | None = None  # None: every label of the model
    activation: str = "auto"
    batch_size: int = 32


@dataclass
class StatsOptions:
    db: Path
    extract: ExtractConfig  # theta, rule, min_n, include_unfinished
    out: Path | None = None
    taxonomy: str | None = None  # None: the run's
    toxicity: ToxicityRequest | None = None


@dataclass
class StatsResult:
    summary: dict[str, Any]  # what `escpro stats --json` prints (and OUT/stats.json holds)
    extraction: Extraction
    files: list[Path] = field(default_factory=list)
    toxicity: Any = None  # escpro.extract.toxicity's result, or None

    @property
    def table5(self) -> dict:
        return self.summary["table5"]


def run_stats(opts: StatsOptions) -> StatsResult:
    ec = opts.extract
    ex = collect(opts.db, theta=ec.theta, rule=ec.rule, min_n=ec.reference_min_n,
                 taxonomy=opts.taxonomy, include_unfinished=ec.include_unfinished)
    with reader.open_db(opts.db) as con:
        calls = reader.call_costs(con)
    tax = ex.taxonomy
    t5 = S.table5(ex.trees, ex.results, tax)
    stage_rows = (S.stage_rows(S.stage_distribution(ex.trees, ex.results, tax, "seed"), tax.names, "seed")
                  + S.stage_rows(S.stage_distribution(ex.trees, ex.results, tax, "esc_pro"), tax.names, "esc_pro"))
    trees = [S.tree_stats(t, r, ec.theta) for t, r in zip(ex.trees, ex.results, strict=True)]
    qs = S.all_q(ex.trees)
    summary: dict[str, Any] = {
        "db": str(opts.db), "rule": ec.rule, "theta": ec.theta, "taxonomy": tax.name,
        "table5": t5, "stages": stage_rows, "trees": trees, "trees_skipped": ex.skipped,
        "q_overall": S._quantiles(qs) | {"nodes": len(qs),
                                          "at_least_theta": sum(1 for q in qs if q >= ec.theta)},
        "calls": calls,
    }
    tox = _toxicity(ex, opts.toxicity)
    if tox is not None:
        summary["toxicity"] = tox.to_dict()
    res = StatsResult(summary, ex, toxicity=tox)
    if opts.out is not None:
        res.files = _write(opts.out, summary, qs, ec.theta, tax.names, tox)
        summary["files"] = [str(f) for f in res.files]
    return res


def _toxicity(ex: Extraction, req: ToxicityRequest | None):
    """Table 7 over the utterances Table 5 counts (None without a model)."""
    if req is None or not req.model:
        return None
    from escpro.extract import toxicity as T

    opts = T.ToxicityOptions(req.model, batch_size=req.batch_size, activation=req.activation,
                             labels=req.labels)
    return T.score_groups(S.utterance_groups(ex.trees, ex.results, ex.taxonomy), opts)


def _write(out: Path, summary: dict, qs: list[float], theta: float, names, tox) -> list[Path]:
    from escpro.extract import export, plot

    out.mkdir(parents=True, exist_ok=True)
    t5, stage_rows = summary["table5"], summary["stages"]
    t5_rows = [{"row": label, **{h: t5[col].get(key) for h, col in TABLE5_COLS}}
               for label, key in TABLE5_ROWS]
    write_csv(out / "table5.csv", t5_rows)
    write_csv(out / "stages.csv", stage_rows)
    write_csv(out / "trees.csv", summary["trees"])
    write_csv(out / "calls.csv", summary["calls"])
    panels = [("Seed dialogues", [r for r in stage_rows if r["source"] == "seed"]),
              ("ESC-Pro (valid paths)", [r for r in stage_rows if r["source"] == "esc_pro"])]
    plot.stage_plot(panels, names, out / "stages.png")
    plot.q_histogram(qs, theta, out / "q_hist.png")
    files = ["table5.csv", "stages.csv", "stages.png", "q_hist.png", "trees.csv", "calls.csv", "stats.json"]
    if tox is not None:
        write_csv(out / "toxicity.csv", tox.csv_rows())
        plot.toxicity_plot(tox.csv_rows(), list(tox.labels), tox.model, out / "toxicity.png")
        files += ["toxicity.csv", "toxicity.png"]
    export.write_json(out / "stats.json", summary)
    return [out / f for f in files]


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, newline="") as fh:
        if not rows:
            return
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
