"""Metrics against hand-computed values and Kang et al.'s own numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from escpro.evaluate import metrics as M
from escpro.evaluate.predictions import read_predictions
from escpro.evaluate.scoring import score_items


def test_f1_with_absent_label_and_invalid_prediction():
    # Labels A, B, C occur; D (in the taxonomy) occurs nowhere and must not be averaged over.
    gold = ["A", "A", "B", "C"]
    pred = ["A", "B", "B", None]  # the None is invalid: wrong, but not a new label
    f1 = M.f1_scores(gold, pred)
    assert f1.labels == ("A", "B", "C")
    # A: P=1 R=1/2 F=2/3; B: P=1/2 R=1 F=2/3; C: F=0.
    assert f1.per_label == pytest.approx({"A": 2 / 3, "B": 2 / 3, "C": 0.0})
    assert f1.macro == pytest.approx(4 / 9)
    assert f1.weighted == pytest.approx((2 * 2 / 3 + 1 * 2 / 3 + 0) / 4)


def test_f1_invalid_counts_as_wrong():
    assert M.f1_scores(["A", "B"], ["A", "B"]).macro == 1.0
    f1 = M.f1_scores(["A", "B"], ["A", None])
    assert f1.labels == ("A", "B")
    assert f1.per_label["B"] == 0.0 and f1.macro == pytest.approx(0.5)


def test_f1_fast_agrees_with_sklearn():
    rng = np.random.default_rng(3)
    labels = [f"s{i}" for i in range(8)]
    for _ in range(50):
        n = int(rng.integers(1, 40))
        g = rng.integers(0, 6, n)  # labels 6, 7 absent from gold
        p = rng.integers(-1, 7, n)  # -1 = invalid; 7 never predicted
        ref = M.f1_scores([labels[i] for i in g], [labels[i] if i >= 0 else None for i in p])
        macro, weighted = M.f1_fast(g, p, 8)
        assert macro == pytest.approx(ref.macro)
        assert weighted == pytest.approx(ref.weighted)


def test_win_matrix_orientation_and_invalid_skipped():
    w = M.win_matrix(["A", "A", "B"], ["B", None, "B"], ["A", "B"])
    # W[pred][gold]: predicted B when gold was A once; the correct B sits on the diagonal.
    assert w.tolist() == [[0, 0], [1, 1]]


def test_bt_two_strategies_closed_form():
    # W01 = 4 (predicted 0 over gold 1), W10 = 1: p0/p1 = sqrt(4/1)^2 = 4 -> p = (1.6, 0.4).
    p, deg = M.bradley_terry_mm(np.array([[0, 4], [1, 0]]))
    assert deg == set()
    assert p.tolist() == pytest.approx([1.6, 0.4])
    assert float(np.std(p)) == pytest.approx(0.6)


def test_bt_one_sweep_is_in_place():
    # By hand, one sweep from p = 1 updating in place (Gauss-Seidel):
    # p0 = (2/2 + 1/2) / (1/2 + 1/2) = 1.5
    # p1 = (1*1.5/2.5 + 1*1/2) / (2/2.5) = 1.1 / 0.8 = 1.375   (a Jacobi update would give 1.0)
    # p2 = (1*1.5/2.5) / (1/2.5 + 1/2.375) = 19/26
    # rescaled to sum 3: (1.248, 1.144, 0.608); the geometric-mean step does not change ratios.
    w = np.array([[0, 2, 1], [1, 0, 1], [1, 0, 0]])
    p, deg = M.bradley_terry_mm(w, sweeps=1)
    assert not deg
    assert p.tolist() == pytest.approx([1.248, 1.144, 0.608])
    gold = ["b", "b", "c", "a", "c", "a", "a"]  # the last pair is correct: diagonal, unused
    pred = ["a", "a", "a", "b", "b", "c", "a"]
    assert M.win_matrix(gold, pred, ["a", "b", "c"]).tolist() == [[1, 2, 1], [1, 0, 1], [1, 0, 0]]
    pref = M.preference_bias(gold, pred, ["a", "b", "c"], 1)
    assert pref.preferences == pytest.approx((1.248, 1.144, 0.608))
    assert pref.bias == pytest.approx(float(np.std([1.248, 1.144, 0.608])))


def test_bt_degenerate_strategy_keeps_p_and_is_named():
    # Strategy c is never a gold label the model got wrong: its MM denominator is empty.
    gold = ["a", "b", "a", "c"]
    pred = ["b", "a", "c", "c"]
    pref = M.preference_bias(gold, pred, ["a", "b", "c"])
    assert pref.degenerate_labels == ["c"]
    assert all(math.isfinite(x) for x in pref.preferences)
    assert sum(pref.preferences) == pytest.approx(3)
    assert math.isfinite(pref.bias)


def test_bt_perfect_model_has_no_bias_information():
    # No mistakes at all: every strategy is degenerate, p stays 1, B = 0.
    pref = M.preference_bias(["a", "b"], ["a", "b"], ["a", "b"])
    assert pref.degenerate_labels == ["a", "b"] and pref.bias == 0.0


def test_rouge_l_known_strings():
    # LCS("the cat sat on the mat", "the cat on the mat") = 5: P = 1, R = 5/6, F = 10/11.
    assert M.rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(10 / 11)
    assert M.rouge_l("same words here", "same words here") == pytest.approx(1.0)
    assert M.rouge_l("nothing shared", "completely different") == 0.0
    assert M.rouge_l("a reply", "") == 0.0
    assert M.rouge_l("running dogs", "run dog", stem=True) == pytest.approx(1.0)


def test_kang_slice_reproduces_their_numbers(shared_data):
    items, tax, fmt = read_predictions(shared_data / "kang_predictions_slice.json")
    assert fmt == "kang" and tax.name == "esconv8" and len(items) == 40
    rep = score_items(items, tax)
    assert rep["Q"] == pytest.approx(0.14715, abs=5e-4)
    assert rep["Qw"] == pytest.approx(0.20794, abs=5e-4)
    assert rep["B"] == pytest.approx(0.84972, abs=5e-4)
    assert rep["b_degenerate"] == [] and rep["invalid_count"] == 0
    assert sum(r["preference"] for r in rep["per_strategy"].values()) == pytest.approx(8)


def test_kang_degenerate_slice_names_the_strategy(shared_data):
    items, tax, _ = read_predictions(shared_data / "kang_predictions_degenerate_slice.json")
    rep = score_items(items, tax)
    assert rep["b_degenerate"] == ["Affirmation and Reassurance"]
    assert math.isfinite(rep["B"]) and math.isfinite(rep["Q"])
    # The degenerate strategy really is never a mispredicted gold label in this slice.
    data = json.loads((shared_data / "kang_predictions_degenerate_slice.json").read_text())
    wrong_gold = {d["strg_gold"].lower() for d in data if d["strg_gold"].lower() != d["strg_pred"].lower()}
    assert "affirmation and reassurance" not in wrong_gold


def test_bootstrap_interval_contains_point_estimate(shared_data):
    items, tax, _ = read_predictions(shared_data / "kang_predictions_slice.json")
    rep = score_items(items, tax, bootstrap=200, seed=1)
    for key in ("Q", "Qw", "rouge_l"):
        lo, hi = rep["ci"][key]
        assert lo <= rep[key] <= hi and lo < hi
    assert rep["ci"] == score_items(items, tax, bootstrap=200, seed=1)["ci"]  # seeded
