"""`escpro ui` as a user runs it: a real server process on loopback, open while `escpro build` writes
the same file. The UI must see the trees grow, the build must finish, and the file must end up
exactly as a build without a reader would leave it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helpers import db_rows

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 30.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return json.loads(r.read())


def escpro(*args) -> list[str]:
    return [sys.executable, "-m", "escpro", *map(str, args)]


def test_ui_reads_while_a_build_writes(tmp_path):
    cfg = tmp_path / "c.yaml"
    sim = {"latency_ms": 25.0, "failure_rate": 0.0}
    cfg.write_text(yaml.safe_dump({
        "roles": {r: {"backend": "sim", "model": "sim", "sim": sim} for r in ("seeker", "supporter", "strategy", "reward")},
        "build": {"sim_max_rounds": 2, "min_iterations": 40, "max_iterations": 48, "min_end_nodes": 1,
                  "max_end_nodes": 30, "concurrent_trees": 2, "commit_interval_s": 0.25}}))
    db = tmp_path / "live.duckdb"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    build = subprocess.Popen(escpro("build", "--seeds", REPO / "escpro/data/demo_seeds.json", "--db", db, "--config", cfg,
                                    "--random-seed", 3, "--no-progress", "--limit", 4),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO)
    ui = None
    try:
        deadline = time.monotonic() + 60
        while not db.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the schema and the first trees
        port = free_port()
        ui = subprocess.Popen(escpro("ui", "--db", db, "--port", port), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        seen = []
        while time.monotonic() < deadline + 60:
            try:
                got = get(f"{base}/api/trees")
            except OSError:
                if ui.poll() is not None:
                    pytest.fail(f"escpro ui exited: {ui.stderr.read().decode()}")
                time.sleep(0.2)
                continue
            running = build.poll() is None
            seen.append((sum(t["nodes"] for t in got["trees"]), running))
            if got["trees"]:
                tid = got["trees"][0]["tree_id"]
                kids = get(f"{base}/api/trees/{tid}/children?node={tid}/r")
                assert kids["children"]
            if build.poll() is not None:
                break
            time.sleep(0.2)
        assert build.wait(timeout=120) == 0, build.stderr.read().decode()
        final = get(f"{base}/api/trees")
        assert {t["status"] for t in final["trees"]} == {"done"} and len(final["trees"]) == 4
        total = sum(t["nodes"] for t in final["trees"])
        during = [n for n, running in seen if running]
        assert len(during) >= 2 and during[0] < total and all(n <= total for n, _ in seen), seen
    finally:
        for p in (build, ui):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
    assert ui.returncode in (0, 130, -signal.SIGINT), ui.stderr.read().decode()
    ref = tmp_path / "ref.duckdb"
    r = subprocess.run(escpro("build", "--seeds", REPO / "escpro/data/demo_seeds.json", "--db", ref, "--config", cfg,
                              "--random-seed", 3, "--no-progress", "--limit", 4), env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert node_rows(db) == node_rows(ref)  # the reader changed nothing the build wrote


def node_rows(path: Path) -> list[tuple]:
    return db_rows(path, "SELECT node_id, kind, strategy, prior, q, n, supporter_text, seeker_text "
                         "FROM nodes ORDER BY node_id")
