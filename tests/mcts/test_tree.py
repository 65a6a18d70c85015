"""The pure node math against hand-computed values."""

from __future__ import annotations

import math

import pytest

from escpro.mcts.tree import (
    Node,
    StopRules,
    add_child,
    backpropagate,
    best_child_pucb,
    gold_child_priors,
    greedy_strategy,
    highest_prior,
    pucb,
    select,
    stop_reason,
    updated_value,
)
from escpro.roles.scoring import strategy_prior


def test_pucb_formula():
    # Q + c * P * sqrt(N_parent) / (1 + N)
    assert pucb(0.5, 3, 0.2, 16, 1.0) == pytest.approx(0.5 + 0.2 * 4 / 4)
    assert pucb(1.0, 100, 0.47, 100, 1.0) == pytest.approx(1.0 + 0.47 * 10 / 101)
    assert pucb(0.0, 0, 0.3, 0, 1.0) == 0.0  # an unvisited parent gives no exploration bonus
    assert pucb(0.2, 1, 0.5, 9, 2.0) == pytest.approx(0.2 + 2 * 0.5 * 3 / 2)


def _tree():
    root = Node((), "root", q=1.0, n=100)
    a = add_child(root, 0, kind="expanded", strategy="A", prior=0.5, q=1.0, n=100)
    b = add_child(root, 1, kind="unexpanded", strategy="B", prior=0.3)
    c = add_child(root, 2, kind="unexpanded", strategy="C", prior=0.2)
    return root, a, b, c


def test_selection_prefers_unvisited_sibling_over_gold_child():
    root, a, b, c = _tree()
    # A: 1 + 0.5*10/101 = 1.0495; B: 0.3*10 = 3; C: 0.2*10 = 2
    assert best_child_pucb(root, 1.0) is b
    assert select(root, 1.0) == [root, b]
    # With c = 0 only Q counts: the gold child wins.
    assert select(root, 0.0) == [root, a]


def test_selection_tie_goes_to_lowest_child_index():
    root = Node((), "root", n=4)
    x = add_child(root, 1, kind="unexpanded", strategy="X", prior=0.5)
    add_child(root, 0, kind="unexpanded", strategy="W", prior=0.5)
    assert [ch.path for ch in root.children] == [(0,), (1,)]
    assert best_child_pucb(root, 1.0).path == (0,)
    assert highest_prior(root.children).path == (0,)
    assert x.depth == 1 and x.child_index == 1


def test_selection_descends_to_a_leaf():
    root, a, b, c = _tree()
    b.q, b.n = -1.0, 5  # B now looks bad: 0.3*sqrt(100)/6 - 1 = -0.5
    c.q, c.n = -1.0, 5
    a1 = add_child(a, 0, kind="unexpanded", strategy="A", prior=0.6)
    add_child(a, 1, kind="unexpanded", strategy="B", prior=0.4)
    assert select(root, 1.0) == [root, a, a1]


def test_backprop_updates_node_and_every_ancestor():
    root, a, b, c = _tree()
    leaf = add_child(a, 1, kind="expanded", strategy="B", prior=0.4)
    touched = backpropagate(leaf, 0.5)
    assert touched == [leaf, a, root]
    assert (leaf.q, leaf.n) == (0.5, 1)
    assert a.q == pytest.approx((1.0 * 100 + 0.5) / 101) and a.n == 101
    assert root.n == 101
    backpropagate(leaf, -1.0)
    assert leaf.q == pytest.approx((0.5 - 1.0) / 2) and leaf.n == 2
    assert a.q == pytest.approx((100 + 0.5 - 1.0) / 102)
    assert (b.q, b.n) == (0.0, 0)  # siblings untouched
    assert updated_value(0.0, 0, 0.7) == (0.7, 1)


def test_gold_priors_when_gold_was_scored():
    names = ["A", "B", "C"]
    scores = {"A": 5, "B": 3, "C": 1}
    pri = gold_child_priors(names, scores, "B", strategy_prior, 0.9, 0.1)
    z = math.exp(1) + math.exp(0.6) + math.exp(0.2)
    assert list(pri) == names
    assert pri["A"] == pytest.approx(math.exp(1) / z)
    assert pri["B"] == pytest.approx(math.exp(0.6) / z)
    assert sum(pri.values()) == pytest.approx(1.0)


def test_gold_priors_09_01_rule_when_gold_unscored():
    names = ["A", "B", "C"]
    pri = gold_child_priors(names, {"A": 5, "C": 1}, "B", strategy_prior, 0.9, 0.1)
    z = math.exp(1) + math.exp(0.2)
    assert list(pri) == names
    assert pri["B"] == 0.1
    assert pri["A"] == pytest.approx(0.9 * math.exp(1) / z)
    assert pri["C"] == pytest.approx(0.9 * math.exp(0.2) / z)
    assert sum(pri.values()) == pytest.approx(1.0)
    # Nothing scored at all: only the gold child, with the fixed prior.
    assert gold_child_priors(names, {}, "C", strategy_prior, 0.9, 0.1) == {"C": 0.1}


def test_greedy_strategy_ties_take_taxonomy_order():
    assert greedy_strategy({"A": 3, "B": 7, "C": 7}) == "B"


@pytest.mark.parametrize(
    "iters,ends,expected",
    [
        (0, 1, None),  # below min iterations
        (99, 5, None),
        (100, 1, "min_iterations_and_end_nodes"),
        (100, 0, None),  # min iterations but no end node yet
        (150, 0, None),
        (200, 0, "max_iterations"),
        (10, 25, "max_end_nodes"),  # enough end nodes stops even before min iterations
        (200, 25, "max_iterations"),
    ],
)
def test_stop_rules_reference_defaults(iters, ends, expected):
    rules = StopRules(min_iterations=100, max_iterations=200, min_end_nodes=1, max_end_nodes=25)
    assert stop_reason(iters, ends, rules) == expected
