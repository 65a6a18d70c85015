"""kill -9 in the middle of a build, then --resume: the node table equals an uninterrupted run's.
The build runs as a real subprocess; while it runs, read-only queries open the same file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb

from escpro.errors import EscproError
from escpro.queries import run_query

TABLE_COLS = ("node_id, tree_id, parent_id, depth, kind, strategy, prior, q, n, supporter_text, "
              "seeker_text, is_end, is_gold, created_iter, child_index, strategy_score")


def escpro(*args, env=None):
    return [sys.executable, "-m", "escpro", *map(str, args)]


def run_cli(args, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(escpro(*args), capture_output=True, text=True, timeout=timeout, env=env)


def nodes(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT {TABLE_COLS} FROM nodes ORDER BY node_id").fetchall()
    finally:
        con.close()


def test_kill9_then_resume_gives_identical_nodes(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 4)
    cfg = build_helpers["write_config"](
        tmp_path / "c.yaml", latency_ms=10.0, min_iterations=25, max_iterations=30,
        max_end_nodes=30, concurrent_trees=2, commit_interval_s=0.25)
    ref = tmp_path / "ref.duckdb"
    r = run_cli(["build", "--seeds", seeds, "--db", ref, "--config", cfg, "--random-seed", 7,
                 "--no-progress", "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["trees"]["done"] == 4

    db = tmp_path / "killed.duckdb"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        escpro("build", "--seeds", seeds, "--db", db, "--config", cfg, "--random-seed", 7,
               "--no-progress"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if not db.exists():
                continue
            try:
                # a read-only query while the build writes: it must get through
                rows = run_query(db, "SELECT coalesce(sum(iterations), 0), count(*) FILTER "
                                        "(WHERE status = 'done') FROM trees", timeout_s=20).rows
            except Exception as exc:  # noqa: BLE001
                if "no table" in str(exc) or "does not exist" in str(exc):
                    continue  # the schema is not there yet
                raise
            seen.append(rows[0])
            if rows[0][0] >= 20 and len(seen) >= 2:
                break
        # Freeze the build where it is: a second CLI process takes seconds to start on a busy
        # machine, longer than the rest of this build, so the build must not run on meanwhile.
        # A stopped process keeps its flock, so it still owns the file.
        os.kill(proc.pid, signal.SIGSTOP)
        assert proc.poll() is None, "the build finished before it could be stopped"
        # a second build on the same file is refused while the first holds it
        second = run_cli(["build", "--seeds", seeds, "--db", db, "--config", cfg, "--resume",
                          "--no-progress"])
        assert second.returncode != 0 and "another escpro build" in second.stderr
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 at whatever point it was stopped
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    iters, done = seen[-1]
    assert iters >= 20 and done < 4, seen
    assert len(seen) >= 2  # several queries succeeded during the build
    partial = nodes(db)
    # killed mid-build: some trees still had iterations to run, so Q/N (if not yet the node set:
    # late iterations often only re-judge end nodes) differ from the finished build's
    assert partial and partial != nodes(ref)

    r = run_cli(["build", "--seeds", seeds, "--db", db, "--config", cfg, "--resume",
                 "--no-progress", "--json"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["random_seed"] == 7  # taken from the interrupted run's record
    assert out["tree_status"] == {"done": 4}
    assert nodes(db) == nodes(ref)
    # Nothing duplicated: one call row per call id, judgements per (node, iteration, offset).
    con = duckdb.connect(str(db), read_only=True)
    try:
        dup = con.execute("SELECT count(*) - count(DISTINCT (node_id, iteration, turn_offset)) "
                          "FROM judgements").fetchone()[0]
        assert dup == 0
        con.execute(f"ATTACH '{ref}' AS ref (READ_ONLY)")
        assert con.execute("SELECT count(*) FROM judgements").fetchone() == \
            con.execute("SELECT count(*) FROM ref.judgements").fetchone()
        assert con.execute(
            "SELECT count(*) FROM (SELECT call_id, role, prompt_hash, status FROM llm_calls "
            "EXCEPT SELECT call_id, role, prompt_hash, status FROM ref.llm_calls)").fetchone() == (0,)
        assert con.execute(
            "SELECT count(*) FROM (SELECT tree_id, status, iterations, end_count, node_count "
            "FROM trees EXCEPT SELECT tree_id, status, iterations, end_count, node_count "
            "FROM ref.trees)").fetchone() == (0,)
    finally:
        con.close()


def test_query_cli_table_and_json(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 2)
    cfg = build_helpers["write_config"](tmp_path / "c.yaml")
    db = tmp_path / "t.duckdb"
    assert run_cli(["build", "--seeds", seeds, "--db", db, "--config", cfg, "--no-progress"]).returncode == 0
    r = run_cli(["query", "--db", db, "SELECT status, count(*) AS n FROM trees GROUP BY status"])
    assert r.returncode == 0 and "status" in r.stdout and "done" in r.stdout and "(1 row)" in r.stdout
    r = run_cli(["query", "--db", db, "--json", "SELECT kind, count(*) AS n FROM nodes GROUP BY kind"])
    kinds = {row["kind"] for row in json.loads(r.stdout)}
    assert kinds <= {"root", "unexpanded", "expanded", "end"} and "root" in kinds
    r = run_cli(["query", "--db", db, "DELETE FROM nodes"])
    assert r.returncode != 0 and r.stderr.startswith("error: SQL error") and "\n" == r.stderr[-1:]
    assert r.stderr.count("\n") == 1
    r = run_cli(["query", "--db", tmp_path / "missing.duckdb", "SELECT 1"])
    assert r.returncode != 0 and "no such database file" in r.stderr


def test_sigterm_commits_and_exits_cleanly(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 3)
    cfg = build_helpers["write_config"](
        tmp_path / "c.yaml", latency_ms=15.0, min_iterations=200, max_iterations=200,
        max_end_nodes=200, concurrent_trees=3, commit_interval_s=30.0)  # commits only on exit
    db = tmp_path / "t.duckdb"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        escpro("build", "--seeds", seeds, "--db", db, "--config", cfg, "--no-progress"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the file exists from the start (the build lock)
            time.sleep(0.1)
            try:
                if run_query(db, "SELECT count(*) FROM runs", timeout_s=20).rows[0][0]:
                    break  # the run is registered
            except EscproError:
                continue
        time.sleep(1.5)  # searching, nothing committed yet but the registration
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("error: interrupted") and "--resume" in err
    rows = run_query(db, "SELECT sum(iterations), count(*) FILTER (WHERE status = 'running') "
                     "FROM trees").rows
    assert rows[0][0] > 0 and rows[0][1] >= 1  # the finished iterations were committed on exit
