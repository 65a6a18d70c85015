"""The paper's evaluation metrics as pure functions (docs/paper.md section 6).

- Q / Qw: sklearn's macro / weighted F1 over sklearn's default label set (labels occurring in
  gold or predictions, as Kang et al. 2024 call it), zero_division 0.
- B: Kang et al.'s strategy preference bias: Bradley-Terry preferences fitted by their MM
  iteration on the "predicted i while gold was j" win matrix, then the population std.
- ROUGE-L: rouge-score's rougeL F-measure of the reply against the gold reply.

Invalid predictions (no parseable or no known strategy) are passed as ``None``. They must count
as wrong for Q/Qw without inventing a label: we give them a sentinel that is not in the label set
handed to sklearn, so each is a false negative for its gold label and a false positive for no
label (with no invalid prediction this is exactly sklearn's default). They are left out of B's
win matrix, because a prediction that names no strategy expresses no preference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

INVALID = "\x00invalid"  # sentinel for an invalid prediction; never a real label

# Kang et al.'s preference fit: 20 MM sweeps (their metrics.py, strg_preference(n=20)).
DEFAULT_SWEEPS = 20


@dataclass(frozen=True)
class F1Scores:
    macro: float
    weighted: float
    labels: tuple[str, ...]  # the label set sklearn averaged over (gold or valid predictions)
    per_label: dict[str, float]
    support: dict[str, int]


def _pred_with_sentinel(pred: Sequence[str | None]) -> list[str]:
    return [INVALID if p is None else p for p in pred]


def f1_scores(gold: Sequence[str], pred: Sequence[str | None]) -> F1Scores:
    """Macro and weighted F1 (sklearn, zero_division=0); ``None`` predictions count as wrong."""
    from sklearn.metrics import f1_score

    if len(gold) != len(pred):
        raise ValueError("gold and pred differ in length")
    if not gold:
        return F1Scores(float("nan"), float("nan"), (), {}, {})
    labels = sorted(set(gold) | {p for p in pred if p is not None})
    y_pred = _pred_with_sentinel(pred)
    kw = {"labels": labels, "zero_division": 0}
    macro = float(f1_score(list(gold), y_pred, average="macro", **kw))
    weighted = float(f1_score(list(gold), y_pred, average="weighted", **kw))
    each = f1_score(list(gold), y_pred, average=None, **kw)
    support = {lab: 0 for lab in labels}
    for g in gold:
        support[g] += 1
    return F1Scores(
        macro, weighted, tuple(labels), {lab: float(v) for lab, v in zip(labels, each)}, support
    )


def f1_fast(gold: np.ndarray, pred: np.ndarray, k: int) -> tuple[float, float]:
    """Macro and weighted F1 from integer codes (0..k-1; -1 = invalid), same label-set rule as
    f1_scores. Used by the bootstrap, where calling sklearn thousands of times is slow; the tests
    check that it agrees with sklearn."""
    valid = pred >= 0
    tp = np.bincount(gold[valid & (gold == pred)], minlength=k)[:k].astype(float)
    true_sum = np.bincount(gold, minlength=k)[:k].astype(float)
    pred_sum = np.bincount(pred[valid], minlength=k)[:k].astype(float)
    present = (true_sum > 0) | (pred_sum > 0)
    if not present.any():
        return float("nan"), float("nan")
    denom = true_sum + pred_sum
    f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    macro = float(f1[present].mean())
    weighted = float((f1 * true_sum).sum() / true_sum.sum()) if true_sum.sum() else 0.0
    return macro, weighted


def win_matrix(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]
) -> np.ndarray:
    """W[i][j] = number of samples where the model predicted labels[i] and the gold was labels[j].

    Invalid (None) predictions are skipped. The diagonal is filled but never used by the fit.
    """
    index = {lab: i for i, lab in enumerate(labels)}
    w = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, pred):
        if p is None:
            continue
        if g not in index or p not in index:
            raise ValueError(f"label not in the label set: {g if g not in index else p!r}")
        w[index[p], index[g]] += 1
    return w


@dataclass(frozen=True)
class Preference:
    preferences: tuple[float, ...]  # per label, summing to K
    bias: float  # B: population std of the preferences
    degenerate: tuple[int, ...]  # label indices whose p could not be updated (kept as it was)
    labels: tuple[str, ...] = field(default=())

    @property
    def degenerate_labels(self) -> list[str]:
        return [self.labels[i] for i in self.degenerate] if self.labels else []


def bradley_terry_mm(w: np.ndarray, sweeps: int = DEFAULT_SWEEPS) -> tuple[np.ndarray, set[int]]:
    """Kang et al.'s MM fit of Bradley-Terry preferences, exactly as their code runs it.

    Start p = 1; per sweep update p_i in place for i = 0..K-1 (later updates see earlier ones):
    p_i <- [sum_{j!=i} W_ij p_j / (p_i + p_j)] / [sum_{j!=i} W_ji / (p_i + p_j)], then divide
    every p by the geometric mean of the non-zero p's. Finally rescale so that sum(p) = K.

    When strategy i is never a mispredicted gold label the denominator is empty: their code
    computes 0/0 in numpy (p_i = nan, which spreads to every p in the next updates) and then
    raises ZeroDivisionError in the geometric-mean step (no positive p is left), so it reports
    no B at all (checked on a degenerate slice of their published predictions, tests/evaluate). Here such a
    p_i keeps its previous value and i is reported as degenerate. A pair with p_i + p_j = 0
    (both already driven to zero) carries no information and is skipped rather than producing
    0/0.
    """
    k = w.shape[0]
    wl = [[float(x) for x in row] for row in np.asarray(w)]  # plain floats: K is tiny
    p = [1.0] * k
    degenerate: set[int] = set()
    for _ in range(sweeps):
        for i in range(k):
            num = 0.0
            den = 0.0
            for j in range(k):
                s = p[i] + p[j]
                if j == i or s == 0:
                    continue
                num += wl[i][j] * p[j] / s
                den += wl[j][i] / s
            if den == 0:
                degenerate.add(i)
                continue
            p[i] = num / den
        nz = [x for x in p if x > 0]
        if nz:
            gmean = math.exp(sum(math.log(x) for x in nz) / len(nz))
            p = [x / gmean for x in p]
    p = np.asarray(p)
    total = p.sum()
    if total > 0:
        p = p * k / total
    return p, degenerate


def preference_bias(
    gold: Sequence[str],
    pred: Sequence[str | None],
    labels: Sequence[str],
    sweeps: int = DEFAULT_SWEEPS,
) -> Preference:
    """B over the given label set (Kang et al. use all K strategies of the taxonomy)."""
    w = win_matrix(gold, pred, labels)
    p, degenerate = bradley_terry_mm(w, sweeps)
    return Preference(
        tuple(float(x) for x in p), float(np.std(p)), tuple(sorted(degenerate)), tuple(labels)
    )


_SCORERS: dict[bool, object] = {}


def rouge_l(reference: str, hypothesis: str, *, stem: bool = False) -> float:
    """rouge-score's rougeL F-measure (no stemming unless asked: the paper names none)."""
    scorer = _SCORERS.get(stem)
    if scorer is None:
        from rouge_score import rouge_scorer

        scorer = _SCORERS[stem] = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
    return float(scorer.score(reference or "", hypothesis or "")["rougeL"].fmeasure)


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
