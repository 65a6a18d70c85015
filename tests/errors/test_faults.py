"""Fault tolerance: builds against the simulator served over real HTTP with 10-50% of the calls
failing (5xx, 503 + Retry-After, malformed, truncated bodies, truncated JSON answers, hangs)
finish or mark trees failed with the reason, never hang, and leave every committed node intact.
scripts/bench_faults.py measures the per-kind table reported in the README."""

from __future__ import annotations

import asyncio
import random
import time

import duckdb
import pytest

from escpro.build.run import BuildOptions, run_build
from escpro.config import AppConfig
from escpro.mcts.config import BuildConfig
from escpro.mcts.search import TreeSearch
from escpro.mcts.state import TreeState
from escpro.roles.backends import retry
from escpro.roles.backends.openai import OpenAIModel
from escpro.roles.backends.sim_server import FaultSettings, SimServerThread
from escpro.roles.base import RoleRequest, Sampling
from escpro.roles.config import SimSettings
from tests.errors.conftest import DEMO_SEEDS


def test_retry_after_values_are_read_and_bounded():
    assert retry.parse_retry_after("2") == 2.0
    assert retry.parse_retry_after(" 0.5 ") == 0.5
    assert retry.parse_retry_after("-3") == 0.0
    assert retry.parse_retry_after("99999") == retry.RETRY_AFTER_MAX_S
    assert retry.parse_retry_after("soon") is None and retry.parse_retry_after(None) is None
    assert retry.parse_retry_after("nan") is None
    assert retry.parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_backoff_has_jitter_and_honours_retry_after():
    rng = random.Random(0)
    waits = [retry.backoff_s(2, 0.5, rng) for _ in range(200)]
    assert all(0.5 <= w < 1.5 for w in waits) and len({round(w, 6) for w in waits}) > 150
    assert retry.backoff_s(1, 0.5, rng, retry_after_s=3.0) == 3.0
    assert retry.worst_case_backoff_s(3, 0.5) >= 3 * retry.RETRY_AFTER_MAX_S


def test_openai_backend_waits_as_long_as_retry_after_says():
    faults = FaultSettings(unavailable_rate=1.0, retry_after_s=0.6)
    with SimServerThread(faults=faults) as srv:
        m = OpenAIModel(srv.base_url, "sim", retries=1, backoff_s=0.01, timeout_s=5)
        req = RoleRequest(role="seeker", messages=[{"role": "user", "content": "hi"}], sampling=Sampling())

        async def go():
            try:
                return await m.generate([req])
            finally:
                await m.aclose()

        t0 = time.perf_counter()
        (res,) = asyncio.run(go())
        waited = time.perf_counter() - t0
    assert res.status == "error" and "HTTP 503" in res.error and res.attempts == 2
    assert waited >= 0.6 and srv.stats.faults["unavailable"] == 2


def _search(failed: int, iterations: int, scale: float = 3.0) -> TreeSearch:
    s = TreeSearch.__new__(TreeSearch)
    s.cfg = BuildConfig(max_consecutive_failures=5, failure_budget_max=scale)
    s.s = TreeState("t", "r", iterations=iterations, failed_iterations=failed)
    return s


def test_failure_budget_scales_with_the_trees_failure_share():
    assert _search(failed=0, iterations=19).failure_budget() == 5  # nothing failed: the base
    assert _search(failed=1, iterations=19).failure_budget() == 6  # 5% failed: 5 / 0.95, rounded up
    assert _search(failed=10, iterations=19).failure_budget() == 10  # half failed: twice
    assert _search(failed=18, iterations=19).failure_budget() == 15  # capped at 3x
    assert _search(failed=5, iterations=4).failure_budget() == 5  # nothing ever worked: fail fast
    assert _search(failed=10, iterations=19, scale=1.0).failure_budget() == 5  # fixed budget


def _config(base_url: str) -> AppConfig:
    http = {"backend": "openai", "model": "sim", "base_url": base_url, "request_timeout_s": 0.5,
            "backoff_s": 0.05}
    return AppConfig.model_validate({
        "roles": {"seeker": dict(http), "supporter": dict(http),
                  "strategy": {**http, "temperature": 0.0}, "reward": {**http, "temperature": 0.0}},
        "build": {"sim_max_rounds": 2, "min_iterations": 6, "max_iterations": 8, "min_end_nodes": 1,
                  "max_end_nodes": 10, "concurrent_trees": 4, "commit_interval_s": 0.2},
    })


def _integrity(db) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "orphans": q("SELECT count(*) FROM nodes c WHERE c.parent_id IS NOT NULL AND NOT EXISTS "
                         "(SELECT 1 FROM nodes p WHERE p.node_id = c.parent_id)"),
            "expanded_without_text": q("SELECT count(*) FROM nodes WHERE kind IN ('expanded', 'end') "
                                       "AND (supporter_text IS NULL OR seeker_text IS NULL)"),
            "non_finite": q("SELECT count(*) FROM nodes WHERE NOT isfinite(q)"),
            "failed_without_reason": q("SELECT count(*) FROM trees WHERE status = 'failed' AND "
                                       "coalesce(error, '') = ''"),
            "unfinished": q("SELECT count(*) FROM trees WHERE status NOT IN ('done', 'failed')"),
        }
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_build_against_a_faulty_http_server_finishes_intact(tmp_path, rate):
    """Every kind of fault at once, `rate` of the calls in all; request-determined failures
    (the engine's 503 and truncated JSON answers) on top."""
    share = rate / 6
    faults = FaultSettings(error_rate=share, unavailable_rate=share, malformed_rate=share,
                           truncated_rate=share, answer_truncated_rate=share, hang_rate=share,
                           hang_s=2.0, retry_after_s=0.05, seed=3)
    sim = SimSettings(failure_rate=rate / 4, invalid_rate=rate / 4, seed=3)
    db = tmp_path / "t.duckdb"
    with SimServerThread(sim, faults) as srv:
        t0 = time.perf_counter()
        summary = run_build(BuildOptions(seeds=DEMO_SEEDS, db=db, config=_config(srv.base_url),
                                         limit=4, random_seed=0, command="test")).to_dict()
        wall = time.perf_counter() - t0
        injected = sum(srv.stats.faults.values())
    assert injected > 0 and wall < 240
    t = summary["trees"]
    assert t["done"] + t["failed"] == 4
    if rate <= 0.3:
        assert t["done"] == 4, summary
    assert _integrity(db) == {"orphans": 0, "expanded_without_text": 0, "non_finite": 0,
                              "failed_without_reason": 0, "unfinished": 0}
