"""scripts/bench_build.py: the bound on a hand-computed case, the chain counting, and tiny real
runs (sim HTTP server in a subprocess) whose JSON a user reads. No timing thresholds here: the
figures are measured by running the script (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench_build.py"


bb = load_script(SCRIPT)


def test_bound_is_the_larger_of_throughput_and_longest_chain():
    # 10 calls on 4 slots at 100 ms: 10 * 0.1 / 4 = 0.25 s; chains 3 and 5 steps: 0.5 s.
    assert bb.bound_s(10, [3, 5], 0.1, 4) == pytest.approx(0.5)
    # 100 calls on 4 slots: 2.5 s beats a 2-step chain (0.2 s).
    assert bb.bound_s(100, [2, 1], 0.1, 4) == pytest.approx(2.5)
    # one slot: every call waits for the previous one.
    assert bb.bound_s(7, [7], 0.02, 1) == pytest.approx(0.14)
    assert bb.bound_s(0, [], 0.1, 4) == 0.0
    with pytest.raises(ValueError):
        bb.bound_s(1, [1], 0.1, 0)


def test_chain_steps_count_concurrent_calls_of_a_tree_once():
    c = bb.Chains()
    # tree a: one call, then three together (gathered judgements), then one: 3 steps
    s1 = c.start("a")
    c.end("a", s1)
    sent = [("a", c.start("a")), ("a", c.start("a")), ("b", c.start("b")), ("a", c.start("a"))]
    for tree, step in sent:
        c.end(tree, step)
    s3 = c.start("a")
    c.end("a", s3)
    assert dict(c.steps) == {"a": 3, "b": 1}


def test_chain_steps_follow_dependencies_when_calls_overlap_staggered():
    """A rollout whose judgements run beside its next calls: judge0 with Strategy, Supporter
    while judge0 still runs, then Seeker with judge1. Three dependent steps (Strategy ->
    Supporter -> Seeker); a count of "nothing in flight -> new step" would say 2."""
    c = bb.Chains()
    judge0, strategy = c.start("a"), c.start("a")
    c.end("a", strategy)
    supporter = c.start("a")  # judge0 is still in flight
    c.end("a", judge0)
    c.end("a", supporter)
    judge1, seeker = c.start("a"), c.start("a")
    c.end("a", seeker)
    c.end("a", judge1)
    assert dict(c.steps) == {"a": 3}


def test_seed_records_have_the_requested_shape():
    recs = bb.seed_records(3, 4, ["A", "B", "C"])
    assert len(recs) == 3
    for r in recs:
        sup = [t for t in r["turns"] if t["speaker"] == "supporter" and "strategy" in t]
        assert len(sup) == 4
    assert len({json.dumps(r) for r in recs}) == 3


def _run(*args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(SCRIPT), "--json", *args], capture_output=True, text=True,
                         timeout=180, env=env, cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


TINY = ("--seeds", "2", "--turns", "2", "--iterations", "2", "--latency-ms", "5", "--capacity", "4")


def test_tiny_run_reports_sane_figures_and_both_arms_run_the_same_search():
    r = _run(*TINY)
    for key in ("wall_s", "baseline_wall_s", "speedup_vs_baseline", "calls", "bound_s", "efficiency",
                "cpu_ms_per_call"):
        assert key in r, key
    assert r["calls"] > 0 and r["wall_s"] > 0 and r["baseline_wall_s"] > 0
    assert 0 < r["efficiency"] <= 1.2
    assert r["cpu_ms_per_call"] > 0
    assert r["trees_done"] == 2 and r["trees_failed"] == 0
    # same seeds, same search, deterministic simulator: the baseline sends exactly the same calls
    assert r["baseline_calls"] == r["calls"]
    # gold initialisation is one step (its Strategy calls go together); an iteration takes
    # between 3 steps (extend a leaf that ends, judge it) and 18 (2 + 1 + 2 + 4 x 3 + 1)
    assert 1 + 2 * 3 <= r["longest_chain"] <= 1 + 2 * 18
    assert r["bound_s"] == pytest.approx(max(r["calls"] * 0.005 / 4, r["longest_chain"] * 0.005), abs=2e-3)


def test_reuse_reports_the_calls_it_saved():
    # enough iterations that some end node is selected again (its re-judgement is a reuse)
    more = ("--seeds", "2", "--turns", "2", "--iterations", "8", "--latency-ms", "2", "--capacity", "4")
    off = _run(*more, "--skip-baseline")
    on = _run(*more, "--skip-baseline", "--reuse")
    assert off["baseline_wall_s"] is None and off["calls_saved_by_reuse"] == 0
    # reuse answers identical requests from the tree's cache; the trees stay the same, so every
    # call is either sent or saved
    assert on["calls_saved_by_reuse"] > 0
    assert on["calls"] + on["calls_saved_by_reuse"] == off["calls"]
    assert on["nodes"] == off["nodes"]


def test_bad_options_are_refused():
    out = subprocess.run([sys.executable, str(SCRIPT), "--latency-ms", "0"], capture_output=True,
                         text=True, timeout=60, cwd=REPO, check=False)
    assert out.returncode == 2 and "--latency-ms must be > 0" in out.stderr
