"""The paper's human-evaluation table (Table 3): win / tie / lose percentages per criterion and
Fleiss' kappa across annotators, computed from the verdict rows (pure functions).

Percentages count every annotator's verdict (the paper's 68.00 / 20.33 / 11.67 are thirds of a
percent: 100 items x 3 annotators). Fleiss' kappa (statsmodels) treats each task as a subject and
win / tie / lose as the categories; it needs the same number of raters per subject, so it uses
the tasks rated by the most common number m >= 2 of annotators or more, keeping the first m
verdicts of each (by time); `kappa_tasks` and `kappa_raters` say what it was computed over.
Kappa is undefined (None) with fewer than two such tasks' worth of variation, e.g. when every
verdict falls in one category.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from escpro.ui.judgements import Verdict

OUTCOMES = ("win", "tie", "lose")


@dataclass(frozen=True)
class Row:
    system_x: str
    system_y: str
    criterion: str
    verdicts: int
    win: int
    tie: int
    lose: int
    win_pct: float | None
    tie_pct: float | None
    lose_pct: float | None
    kappa: float | None
    kappa_tasks: int
    kappa_raters: int
    annotators: int


def fleiss(table: np.ndarray) -> float | None:
    """statsmodels' Fleiss' kappa of a subjects x categories count table; None when undefined."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    if table.shape[0] < 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when all verdicts agree on one category
        k = float(fleiss_kappa(table, method="fleiss"))
    return None if math.isnan(k) or math.isinf(k) else k


def kappa_counts(verdicts: list[Verdict]) -> tuple[np.ndarray, int]:
    """(subjects x [win, tie, lose] counts, raters per subject) as described in the module doc."""
    by_task: dict[str, list[Verdict]] = {}
    for v in sorted(verdicts, key=lambda v: v.updated_at):
        by_task.setdefault(v.task_id, []).append(v)
    sizes = Counter(len(vs) for vs in by_task.values() if len(vs) >= 2)
    if not sizes:
        return np.zeros((0, 3), dtype=int), 0
    m = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))[0]
    rows = []
    for vs in by_task.values():
        if len(vs) >= m:
            c = Counter(v.outcome for v in vs[:m])
            rows.append([c[o] for o in OUTCOMES])
    return np.array(rows, dtype=int), m


def _pct(k: int, n: int) -> float | None:
    return round(100.0 * k / n, 2) if n else None


def table(verdicts: list[Verdict], criteria: tuple[str, ...]) -> list[Row]:
    """One row per (system pair, criterion), pairs in name order, criteria in paper order."""
    pairs = sorted({(v.system_x, v.system_y) for v in verdicts})
    out = []
    for x, y in pairs:
        for crit in criteria:
            vs = [v for v in verdicts if (v.system_x, v.system_y) == (x, y) and v.criterion == crit]
            c = Counter(v.outcome for v in vs)
            counts, m = kappa_counts(vs)
            n = len(vs)
            out.append(Row(
                x, y, crit, n, c["win"], c["tie"], c["lose"],
                _pct(c["win"], n), _pct(c["tie"], n), _pct(c["lose"], n),
                fleiss(counts) if len(counts) else None, len(counts), m,
                len({v.annotator for v in vs}),
            ))
    return out


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    fields = list(Row.__dataclass_fields__)
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
    return buf.getvalue()


def to_json(rows: list[Row], study: dict) -> str:
    return json.dumps({"study": study, "rows": [asdict(r) for r in rows]}, indent=2, ensure_ascii=False) + "\n"


def to_text(rows: list[Row]) -> str:
    """The paper's layout: one block per system pair, win / lose / tie / kappa per criterion."""
    def pct(v: float | None) -> str:
        return f"{'-':>6}" if v is None else f"{v:6.2f}"

    lines = []
    for x, y in dict.fromkeys((r.system_x, r.system_y) for r in rows):
        lines.append(f"{x} vs. {y}")
        lines.append(f"  {'':<14} {'win':>6}  {'lose':>6}  {'tie':>6}  {'kappa':>6}  {'verdicts':>8}")
        for r in rows:
            if (r.system_x, r.system_y) == (x, y):
                k = f"{'-':>6}" if r.kappa is None else f"{r.kappa:6.3f}"
                lines.append(f"  {r.criterion:<14} {pct(r.win_pct)}  {pct(r.lose_pct)}  {pct(r.tie_pct)}  {k}  {r.verdicts:>8}")
    return "\n".join(lines) if lines else "no verdicts yet"
