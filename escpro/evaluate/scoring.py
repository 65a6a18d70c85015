"""Score a list of predictions: Q, Qw, B, ROUGE-L, invalid counts, bootstrap intervals.

The JSON shape produced here is what `escpro score --json` prints and what `escpro eval run`
stores as scores.json; `escpro eval report` reads it back. All values are fractions, not percent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from escpro.evaluate import metrics as M
from escpro.evaluate.predictions import PredItem
from escpro.taxonomy import Taxonomy

CI_LEVEL = 0.95


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


@dataclass(frozen=True)
class StrategyScores:
    """Strategy prediction over the strategy-labelled items: F1 (Q, Qw) and preference bias (B)."""

    n: int  # strategy-labelled items
    n_invalid: int
    gold: list[str]
    pred: list[str | None]
    f1: M.F1Scores
    pref: M.Preference | None  # None: no valid prediction, so no preference to measure
    b_reason: str | None  # why B is missing, when it is
    invalid_labels: dict[str, int]


B_DEGENERATE_POLICY = (
    "a strategy whose MM denominator is empty (never a mispredicted gold label, or only "
    "against strategies whose preference is already 0; Kang et al.'s code raises "
    "ZeroDivisionError there and reports no B) "
    "keeps its previous preference and is listed here"
)


def score_items(
    items: Sequence[PredItem],
    taxonomy: Taxonomy,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    stem: bool = False,
    sweeps: int = M.DEFAULT_SWEEPS,
) -> dict:
    labels = taxonomy.names
    st = strategy_scores(items, labels, sweeps)
    rouge = [M.rouge_l(it.response_gold, it.response_pred or "", stem=stem) for it in items if it.response_gold]
    out = {
        "Q": _nan_to_none(st.f1.macro) if st.n else None,
        "Qw": _nan_to_none(st.f1.weighted) if st.n else None,
        "B": st.pref.bias if st.pref else None,
        "B_reason": st.b_reason,
        "rouge_l": M.mean(rouge) if rouge else None,
        "n": len(items),
        "n_strategy": st.n,
        "n_rouge": len(rouge),
        "invalid": (st.n_invalid / st.n) if st.n else 0.0,
        "invalid_count": st.n_invalid,
        "invalid_labels": st.invalid_labels,
        "per_strategy": per_strategy(st, labels),
        "b_degenerate": st.pref.degenerate_labels if st.pref else [],
        "b_degenerate_policy": B_DEGENERATE_POLICY,
        "f1_labels": list(st.f1.labels),
        "taxonomy": taxonomy.name,
    }
    if bootstrap > 0:
        out["ci"] = bootstrap_ci(items, taxonomy, n=bootstrap, seed=seed, rouge=rouge, sweeps=sweeps)
        out["bootstrap"] = {"n": bootstrap, "seed": seed, "level": CI_LEVEL}
    return out


def strategy_scores(items: Sequence[PredItem], labels: Sequence[str], sweeps: int) -> StrategyScores:
    strat = [it for it in items if it.gold is not None]
    gold = [it.gold for it in strat]
    pred = [it.pred for it in strat]
    n_invalid = sum(1 for it in strat if it.invalid)
    n_valid = len(strat) - n_invalid
    # B measures which strategies a model prefers; with no valid prediction there is no
    # preference to measure, and the fit's untouched start (all p = 1) would read as B = 0, the
    # best possible score.
    pref = M.preference_bias(gold, pred, labels, sweeps) if n_valid else None
    b_reason = None
    if not strat:
        b_reason = "no strategy-labelled item"
    elif not n_valid:
        b_reason = f"no valid prediction ({n_invalid} of {len(strat)} invalid): no preference to measure"
    invalid_labels = Counter(it.pred_label or "<none>" for it in strat if it.invalid)
    return StrategyScores(n=len(strat), n_invalid=n_invalid, gold=gold, pred=pred, f1=M.f1_scores(gold, pred),
                          pref=pref, b_reason=b_reason, invalid_labels=dict(invalid_labels.most_common(20)))


def per_strategy(st: StrategyScores, labels: Sequence[str]) -> dict[str, dict]:
    """F1, preference, gold and predicted counts of every strategy of the taxonomy."""
    return {
        lab: {
            "f1": st.f1.per_label.get(lab),
            "preference": st.pref.preferences[i] if st.pref else None,
            "support": sum(1 for g in st.gold if g == lab),
            "predicted": sum(1 for p in st.pred if p == lab),
        }
        for i, lab in enumerate(labels)
    }


def bootstrap_ci(
    items: Sequence[PredItem],
    taxonomy: Taxonomy,
    *,
    n: int,
    seed: int = 0,
    rouge: Sequence[float] | None = None,
    sweeps: int = M.DEFAULT_SWEEPS,
) -> dict[str, list[float] | None]:
    """Percentile intervals from resampling items with replacement (strategy items and ROUGE
    items resampled separately, each at its own size)."""
    rng = np.random.default_rng(seed)
    labels = taxonomy.names
    code = {lab: i for i, lab in enumerate(labels)}
    strat = [it for it in items if it.gold is not None]
    g = np.array([code[it.gold] for it in strat], dtype=np.int64)
    p = np.array([code[it.pred] if it.pred is not None else -1 for it in strat], dtype=np.int64)
    k = len(labels)
    if rouge is None:
        rouge = [
            M.rouge_l(it.response_gold, it.response_pred or "") for it in items if it.response_gold
        ]
    r = np.asarray(rouge, dtype=float)
    qs, qws, bs, rls = [], [], [], []
    for _ in range(n):
        if len(g):
            idx = rng.integers(0, len(g), len(g))
            gi, pi = g[idx], p[idx]
            q, qw = M.f1_fast(gi, pi, k)
            qs.append(q)
            qws.append(qw)
            ok = pi >= 0
            w = np.zeros((k, k), dtype=np.int64)
            np.add.at(w, (pi[ok], gi[ok]), 1)
            if ok.any():  # a resample without a valid prediction has no B (see score_items)
                pref, _ = M.bradley_terry_mm(w, sweeps)
                bs.append(float(np.std(pref)))
        if len(r):
            rls.append(float(r[rng.integers(0, len(r), len(r))].mean()))
    lo, hi = (1 - CI_LEVEL) / 2 * 100, (1 + CI_LEVEL) / 2 * 100

    def ci(vals: list[float]) -> list[float] | None:
        v = np.asarray(vals, dtype=float)
        v = v[~np.isnan(v)]
        return [float(np.percentile(v, lo)), float(np.percentile(v, hi))] if v.size else None

    return {"Q": ci(qs), "Qw": ci(qws), "B": ci(bs), "rouge_l": ci(rls)}


def format_text(report: dict, source: str = "") -> str:
    """The human summary `escpro score` prints."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}"

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    ci = report.get("ci") or {}

    def with_ci(key: str, fmt) -> str:
        iv = ci.get(key)
        base = fmt(report.get(key))
        if not iv:
            return base
        return f"{base} [{fmt(iv[0])}, {fmt(iv[1])}]"

    lines = []
    if source:
        lines.append(f"{source}  (taxonomy {report['taxonomy']})")
    lines.append(
        f"n = {report['n']}  (strategy-labelled {report['n_strategy']}, "
        f"invalid {report['invalid_count']} = {100 * report['invalid']:.1f}%)"
    )
    lines.append(f"Q   (macro-F1, %)     {with_ci('Q', pct)}")
    lines.append(f"Qw  (weighted-F1, %)  {with_ci('Qw', pct)}")
    b_note = f"   n/a: {report['B_reason']}" if report.get("B_reason") else "   lower is better"
    lines.append(f"B   (preference bias) {with_ci('B', num)}{b_note}")
    lines.append(f"R-L (ROUGE-L F, %)    {with_ci('rouge_l', pct)}  over {report['n_rouge']} replies")
    if report.get("ci"):
        b = report["bootstrap"]
        lines.append(f"[..] = {int(100 * b['level'])}% bootstrap interval, {b['n']} resamples")
    lines.append("")
    lines.append(f"{'strategy':<32} {'F1 %':>7} {'pref':>7} {'gold':>5} {'pred':>5}")
    for lab, row in report["per_strategy"].items():
        lines.append(
            f"{lab[:32]:<32} {pct(row['f1']):>7} {num(row['preference']):>7} "
            f"{row['support']:>5} {row['predicted']:>5}"
        )
    if report["b_degenerate"]:
        lines.append(
            "degenerate in B (no usable comparison as a mispredicted gold label; preference "
            "kept, not updated): "
            + ", ".join(report["b_degenerate"])
        )
    if report["invalid_labels"]:
        shown = ", ".join(f"{k!r} x{v}" for k, v in report["invalid_labels"].items())
        lines.append(f"invalid predictions by label: {shown}")
    return "\n".join(lines)
