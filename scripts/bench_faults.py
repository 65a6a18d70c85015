"""Fault tolerance of a build: how many of 6 trees finish when a share of the calls fail.

Each cell is one `escpro build` (a library call, in its own subprocess with a hard deadline so a
hang shows as a hang) of the 6 bundled demo seeds with the tiny search (configs/build/tiny.yaml's
numbers) against the simulator served over real HTTP on loopback (escpro.roles.backends.
sim_server) with one kind of fault injected into a share of the calls:

  500         HTTP 500 (random per request)
  503         HTTP 503 from the simulated engine (decided by the request body, so resending the
              same body fails again: only a changed request helps; SimSettings.failure_rate)
  503-ra      HTTP 503 with `Retry-After: 1` (random per request; FaultSettings.unavailable_rate)
  malformed   HTTP 200 whose body is not a completion
  truncated   the HTTP body cut off mid-JSON (the connection closes short of Content-Length)
  json-answer a well-formed completion whose JSON answer is cut short (decided by the request
              body, like a model that runs out of tokens; SimSettings.invalid_rate)
  hang        no answer for 10 s (the client's per-attempt timeout is 2 s)

A cell reports trees done/failed, the failure reasons, the wall time and an integrity check of
what was committed (every node's parent exists, expanded nodes have their texts, Q and N are
finite, no call row points at a missing node). Kinds the code under test does not have are
reported as null, so the same script measures an older checkout:

    PYTHONPATH=/work/main python scripts/bench_faults.py --json     # before
    PYTHONPATH=$PWD python scripts/bench_faults.py --json           # after
    python scripts/bench_faults.py --kinds 503 json-answer --rates 0.3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ("500", "503", "503-ra", "malformed", "truncated", "json-answer", "hang")
RATES = (0.1, 0.3, 0.5)
TREES = 6
REQUEST_TIMEOUT_S = 2.0
HANG_S = 10.0


def _server_settings(kind: str, rate: float):
    """(SimSettings, FaultSettings) for one cell, or None when this checkout lacks the kind."""
    from dataclasses import fields

    from escpro.roles.backends.sim_server import FaultSettings
    from escpro.roles.config import SimSettings

    have = {f.name for f in fields(FaultSettings)}
    sim: dict = {}
    fault: dict = {"hang_s": HANG_S, "seed": 1}
    key = {"500": "error_rate", "503-ra": "unavailable_rate", "malformed": "malformed_rate",
           "truncated": "truncated_rate", "hang": "hang_rate"}.get(kind)
    if kind == "503":
        sim["failure_rate"] = rate
    elif kind == "json-answer":
        sim["invalid_rate"] = rate
    elif key not in have:
        return None
    else:
        fault[key] = rate
    return SimSettings(seed=1, **sim), FaultSettings(**fault)


def _config(base_url: str):
    from escpro.config import AppConfig

    http = {"backend": "openai", "model": "sim", "base_url": base_url,
            "request_timeout_s": REQUEST_TIMEOUT_S}
    return AppConfig.model_validate({
        "roles": {"seeker": dict(http), "supporter": dict(http),
                  "strategy": {**http, "temperature": 0.0}, "reward": {**http, "temperature": 0.0}},
        "build": {"sim_max_rounds": 2, "min_iterations": 10, "max_iterations": 20,
                  "min_end_nodes": 1, "max_end_nodes": 10, "concurrent_trees": 8,
                  "commit_interval_s": 0.5},
    })


def _integrity(db: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "nodes": q("SELECT count(*) FROM nodes"),
            "orphans": q("SELECT count(*) FROM nodes c WHERE c.parent_id IS NOT NULL AND NOT EXISTS "
                         "(SELECT 1 FROM nodes p WHERE p.node_id = c.parent_id)"),
            "expanded_without_text": q("SELECT count(*) FROM nodes WHERE kind IN ('expanded', 'end') "
                                       "AND (supporter_text IS NULL OR seeker_text IS NULL)"),
            "non_finite_q": q("SELECT count(*) FROM nodes WHERE NOT isfinite(q)"),
            "dangling_calls": q("SELECT count(*) FROM llm_calls c WHERE c.node_id IS NOT NULL AND NOT "
                                "EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = c.node_id)"),
        }
    finally:
        con.close()


def run_cell(kind: str, rate: float) -> dict:
    """One build in this process; the parent process enforces the deadline."""
    import logging

    logging.disable(logging.CRITICAL)
    settings = _server_settings(kind, rate)
    if settings is None:
        return {"kind": kind, "rate": rate, "supported": False}
    import escpro
    from escpro.build.run import BuildOptions, run_build
    from escpro.roles.backends.sim_server import SimServerThread

    seeds = Path(escpro.__file__).resolve().parent / "data" / "demo_seeds.json"
    with tempfile.TemporaryDirectory() as tmp, SimServerThread(*settings) as srv:
        db = Path(tmp) / "trees.duckdb"
        t0 = time.perf_counter()
        summary = run_build(BuildOptions(seeds=seeds, db=db, config=_config(srv.base_url),
                                         limit=TREES, random_seed=0, command="bench_faults")).to_dict()
        wall = time.perf_counter() - t0
        import duckdb

        con = duckdb.connect(str(db), read_only=True)
        reasons = [r[0] for r in con.execute(
            "SELECT error FROM trees WHERE status = 'failed' ORDER BY tree_id").fetchall()]
        con.close()
        return {"kind": kind, "rate": rate, "supported": True, "done": summary["trees"]["done"],
                "failed": summary["trees"]["failed"], "wall_s": round(wall, 1),
                "faults_injected": dict(srv.stats.faults), "calls": sum(srv.stats.requests.values()),
                "failure_reasons": [(r or "")[:160] for r in reasons], "integrity": _integrity(db)}


def run_isolated(kind: str, rate: float, deadline_s: float) -> dict:
    cmd = [sys.executable, __file__, "--cell", kind, str(rate)]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline_s,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired:
        return {"kind": kind, "rate": rate, "supported": True, "hung": True,
                "wall_s": round(time.perf_counter() - t0, 1)}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"kind": kind, "rate": rate, "supported": True, "crashed": True,
                "stderr": out.stderr.strip().splitlines()[-3:]}
    return json.loads(lines[-1])


def _cell_text(r: dict) -> str:
    if not r.get("supported", True):
        return "n/a"
    if r.get("hung"):
        return "HUNG"
    if r.get("crashed"):
        return "CRASH"
    bad = sum(v for k, v in r["integrity"].items() if k != "nodes")
    return f"{r['done']}/{TREES}" + ("" if not bad else " (!)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    ap.add_argument("--deadline-s", type=float, default=600.0, help="a cell running longer is a hang")
    ap.add_argument("--json", action="store_true", help="print every cell as JSON (one object)")
    ap.add_argument("--cell", nargs=2, metavar=("KIND", "RATE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], float(args.cell[1]))))
        return
    cells = []
    for kind in args.kinds:
        for rate in args.rates:
            r = run_isolated(kind, rate, args.deadline_s)
            cells.append(r)
            print(f"{kind:12s} {rate:4.0%}: {_cell_text(r):8s} {r.get('wall_s', '')}", file=sys.stderr)
    head = "| fault | " + " | ".join(f"{x:.0%}" for x in args.rates) + " |"
    rows = [head, "|---" * (len(args.rates) + 1) + "|"]
    for kind in args.kinds:
        got = [c for c in cells if c["kind"] == kind]
        rows.append(f"| {kind} | " + " | ".join(_cell_text(c) for c in got) + " |")
    if args.json:
        print(json.dumps({"trees": TREES, "cells": cells, "table": rows}, indent=1))
    else:
        print("\n".join(rows))
    if any(c.get("hung") or c.get("crashed") for c in cells):
        sys.exit(1)
    assert all(math.isfinite(c.get("wall_s", 0)) for c in cells)


if __name__ == "__main__":
    main()
