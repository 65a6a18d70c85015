"""Valid paths and pairs on the hand-built tree of conftest.py, where the answers are known."""

from __future__ import annotations

from escpro.dialogue import Utterance as U
from escpro.extract.rules import exclusion_summary, extract_tree, valid_paths
from escpro.extract.tree import context_turns, history_before


def _pairs(tree, theta, rule="paper", min_n=2):
    res = extract_tree(tree, theta, rule, min_n)
    return {(p.chosen_id.split("/")[1], p.rejected_id.split("/")[1]) for p in res.pairs}, res


def test_paper_rule_paths_include_gold_and_q_equal_theta(t1):
    paths = valid_paths(t1, 0.5, "paper")
    assert [p.path_id for p in paths] == ["t1/r.0.0", "t1/r.0.2", "t1/r.1.0"]
    assert paths[0].node_ids == ("t1/r.0", "t1/r.0.0")  # the gold path, root excluded
    # r.2.0 has Q 0.9 but its parent r.2 has Q 0.3 < theta: not valid by the paper's rule
    assert "t1/r.2.0" not in {p.path_id for p in paths}


def test_paper_rule_pairs(t1):
    pairs, res = _pairs(t1, 0.5)
    assert pairs == {
        ("r.0", "r.2"), ("r.0", "r.3"),  # r.1 lies on a valid path: not a rejected sibling
        ("r.0.0", "r.0.1"), ("r.0.2", "r.0.1"),  # r.0.3 is unexpanded, r.0.2/r.0.0 on paths
        ("r.1", "r.2"), ("r.1", "r.3"),
        ("r.1.0", "r.1.1"),
    }
    assert len(res.pairs) == 7
    by_chosen = {p.chosen_id: p.path_ids for p in res.pairs}
    assert by_chosen["t1/r.0"] == ("t1/r.0.0", "t1/r.0.2")  # r.0 lies on two valid paths
    assert res.reason is None


def test_reference_rule_checks_only_end_node_and_n(t1):
    paths = valid_paths(t1, 0.5, "reference", min_n=2)
    # r.0.2 (Q == theta but N = 1) fails N >= 2; r.2.0 passes although r.2 has Q < theta
    assert [p.path_id for p in paths] == ["t1/r.0.0", "t1/r.1.0", "t1/r.2.0"]
    pairs, _ = _pairs(t1, 0.5, "reference")
    assert pairs == {
        ("r.0", "r.3"), ("r.1", "r.3"), ("r.2", "r.3"),  # r.2 on a valid path: excluded as rejected
        ("r.0.0", "r.0.1"),  # r.0.2 has Q == theta: not a rejected sibling
        ("r.1.0", "r.1.1"),
        ("r.2.0", "r.2.1"),
    }
    assert len(valid_paths(t1, 0.5, "reference", min_n=1)) == 4  # now r.0.2 as well


def test_theta_edges(t1):
    # theta 0.49: r.3 (Q 0.49) becomes a valid one-turn path and stops being a rejected sibling
    assert "t1/r.3" in {p.path_id for p in valid_paths(t1, 0.49)}
    pairs, _ = _pairs(t1, 0.49)
    assert not any(r == "r.3" for _, r in pairs)
    # theta just above 0.5: r.0.2 (Q exactly 0.5) is no longer valid and becomes rejected
    pairs, _ = _pairs(t1, 0.5000001)
    assert ("r.0.0", "r.0.2") in pairs
    # theta 0.3: r.2 -> r.2.0 valid; r.2.1 (Q -0.5) rejected against r.2.0
    pairs, _ = _pairs(t1, 0.3)
    assert ("r.2.0", "r.2.1") in pairs and ("r.0", "r.2") not in pairs
    # theta above every Q: nothing, with a reason
    pairs, res = _pairs(t1, 1.5)
    assert pairs == set() and res.paths == () and "no end node with Q >= 1.5" in res.reason


def test_no_valid_path_reported(fx):
    t2 = fx.make_tree("t2", fx.T2_NODES, fx.seed_for("I feel alone."))
    res = extract_tree(t2, 0.5)
    assert res.paths == () and res.pairs == ()
    assert res.reason == "no end node with Q >= 0.5 (best 0.200)"
    t3 = fx.make_tree("t3", fx.T3_NODES, None)
    res3 = extract_tree(t3, 0.5)
    assert res3.reason == "no end node" and res3.paths == () and res3.pairs == ()


def test_dialogue_context_from_seed(t1):
    # the greeting before the first seeker turn is context; the root holds the seeker turn
    assert context_turns(t1) == [U("supporter", "Hi, how can I help?"), U("seeker", "I lost my job.")]
    hist = history_before(t1, "t1/r.0.1", None)
    assert hist[-2:] == [U("supporter", "That sounds hard.", "Emotional Validation"), U("seeker", "It is.")]


def test_unjudged_siblings_are_not_rejected_examples(fx):
    # r.0.1 (Q 0.2) extended by an iteration that failed before backpropagation: N = 0, and its
    # Q of 0 is no judgement. It is left out of the pairs and counted.
    spec = [(s, st, p, (0.0 if s == "r.0.1" else q), (0 if s == "r.0.1" else n), k, a, b, g)
            for s, st, p, q, n, k, a, b, g in fx.T1_NODES]
    tree = fx.make_tree("t1", spec, fx.SEED_T1)
    res = extract_tree(tree, 0.5)
    rejected = {p.rejected_id for p in res.pairs}
    assert "t1/r.0.1" not in rejected and {"t1/r.2", "t1/r.3", "t1/r.1.1"} <= rejected
    assert len(res.pairs) == 5 and res.unjudged_excluded == 1
    assert exclusion_summary([res, extract_tree(fx.make_tree("t1", fx.T1_NODES, fx.SEED_T1), 0.5)])[
        "rejected_unjudged"] == 1
