"""Data integrity (issue 13, items 2 and 4, the dangling-row and --retry-failed defects), each
test named after its defect. Real DuckDB files, the real CLI and real build subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from escpro.build.run import BuildOptions, run_build
from escpro.cli import cli
from escpro.config import load_config
from escpro.errors import EscproError
from escpro.queries import run_query

sys.path.insert(0, str(Path(__file__).parent))
from integrity_helpers import (  # noqa: E402
    escpro,
    one_line_error,
    q,
    run_cli,
)


# ---- 2. read-only queries, the build lock on the file ------------------------------------------
@pytest.mark.parametrize("sql", [
    "COPY (SELECT 'gone') TO '{db}'",
    "ATTACH '{link}' AS y (READ_WRITE); DELETE FROM y.nodes",
    "SELECT * FROM read_text('/etc/passwd')",
    "COPY nodes TO '{out}'",
    "EXPORT DATABASE '{outdir}'",
    "INSTALL sqlite",
    "SET enable_external_access = true",
    "DELETE FROM nodes",
])
def test_query_cannot_write_the_file_or_touch_any_other(sql, good, tmp_path):
    db = tmp_path / "t.duckdb"
    db.write_bytes(good["db"].read_bytes())
    os.link(db, tmp_path / "link.duckdb")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    text = sql.format(db=db, link=tmp_path / "link.duckdb", out=tmp_path / "o.csv",
                      outdir=tmp_path / "exp")
    res = CliRunner().invoke(cli, ["query", "--db", str(db), text])
    err = res.stderr.strip()
    assert res.exit_code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "exp").exists()
    # SELECT still works
    res = CliRunner().invoke(cli, ["query", "--db", str(db), "--json",
                                   "SELECT count(*) AS n FROM nodes WHERE is_gold"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["n"] > 0


def test_every_reader_connection_is_locked_down(good):
    from escpro.store.reader import open_read_only

    con = open_read_only(good["db"])
    try:
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoload_known_extensions', 'autoinstall_known_extensions', "
            "'access_mode')").fetchall())
    finally:
        con.close()
    assert settings == {"enable_external_access": "false", "lock_configuration": "true",
                        "autoload_known_extensions": "false",
                        "autoinstall_known_extensions": "false", "access_mode": "read_only"}


def test_build_lock_is_on_the_file_not_the_path(tmp_path, build_helpers):
    """A symlink (or hard link) to a file being built used to get its own lock: both builds ran
    and wrote 250 duplicate judgement rows."""
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 3)
    cfg = build_helpers["write_config"](tmp_path / "c.yaml", latency_ms=50.0, min_iterations=150,
                                        max_iterations=200, max_end_nodes=200, concurrent_trees=1)
    db = tmp_path / "t.duckdb"
    proc = subprocess.Popen(escpro("build", "--seeds", seeds, "--db", db, "--config", cfg,
                                   "--no-progress"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                if run_query(db, "SELECT count(*) FROM runs", timeout_s=20).rows[0][0]:
                    break
            except EscproError:
                continue
        (tmp_path / "sub").mkdir()
        (tmp_path / "sym.duckdb").symlink_to(db)
        os.link(db, tmp_path / "hard.duckdb")
        for other in (tmp_path / "sym.duckdb", tmp_path / "hard.duckdb",
                      tmp_path / "sub" / ".." / "t.duckdb"):
            res = run_cli("build", "--seeds", seeds, "--db", other, "--config", cfg, "--resume",
                          "--no-progress")
            err = one_line_error(res)
            assert "another escpro build is writing this file" in err, err
        assert proc.poll() is None, "the first build ended before the check"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert q(db, "SELECT count(*) FROM runs") == [(1,)]


# ---- 4. numbers that are not numbers ----------------------------------------------------------
@pytest.mark.parametrize("text,key", [
    ("roles: {reward_alpha: .nan}", "roles.reward_alpha"),
    ("build: {gold_q: .nan}", "build.gold_q"),
    ("roles: {reward_alpha: -3}", "roles.reward_alpha"),
    ("build: {gold_q: 7}", "build.gold_q"),
    ("build: {c: .inf}", "build.c"),
    ("roles: {seeker: {temperature: .nan}}", "roles.seeker.temperature"),
    ("extract: {theta: .nan}", "extract.theta"),
    ("roles: {prompts_dir: /no/such/prompts}", "roles.prompts_dir"),
])
def test_config_numbers_are_finite_and_in_range(text, key, tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 1)
    (tmp_path / "c.yaml").write_text(text)
    db = tmp_path / "t.duckdb"
    res = CliRunner().invoke(cli, ["build", "--seeds", str(seeds), "--db", str(db), "--config",
                                   str(tmp_path / "c.yaml"), "--backend", "sim"])
    err = res.stderr.strip()
    assert res.exit_code == 2 and len(err.splitlines()) == 1 and key in err, err
    assert not db.exists()


def test_train_check_refuses_negative_max_steps(repo_dir):
    res = CliRunner().invoke(cli, ["train", "--config", str(repo_dir / "configs/train/tiny-cpu.yaml"),
                                   "--check", "--max-steps", "-3"])
    assert res.exit_code == 2 and "max_steps" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_random_seed_too_large_is_one_line(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 1)
    res = CliRunner().invoke(cli, ["build", "--seeds", str(seeds), "--db", str(tmp_path / "t.duckdb"),
                                   "--backend", "sim", "--random-seed", str(2**70)])
    assert res.exit_code == 2 and "--random-seed" in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(EscproError, match="random-seed"):
        run_build(BuildOptions(seeds=seeds, db=tmp_path / "t.duckdb", config=load_config(),
                               backend="sim", random_seed=2**64))


def test_yaml_alias_bomb_is_refused_quickly(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 1)
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("roles: {seeker: {extra_body: {k: *a8}}}")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    res = CliRunner().invoke(cli, ["build", "--seeds", str(seeds), "--db", str(tmp_path / "t.duckdb"),
                                   "--config", str(tmp_path / "bomb.yaml"), "--backend", "sim"])
    assert time.monotonic() - t0 < 5
    assert res.exit_code == 2 and "expands to more than" in res.stderr
    assert not (tmp_path / "t.duckdb").exists()
    big = tmp_path / "big.yaml"
    big.write_text("build: {}\n" + "# padding\n" * 200_000)
    res = CliRunner().invoke(cli, ["build", "--seeds", str(seeds), "--db", str(tmp_path / "t.duckdb"),
                                   "--config", str(big), "--backend", "sim"])
    assert res.exit_code == 2 and "at most" in res.stderr


def test_nan_never_reaches_the_store(tmp_path):
    from escpro.mcts.state import Delta
    from escpro.store.writer import Batch

    row = {"tree_id": "t", "node_count": 1}
    with pytest.raises(ValueError, match="not a finite number"):
        Batch().add(Delta(row, nodes=[{"node_id": "t/r", "q": float("nan"), "prior": None}]))
    with pytest.raises(ValueError, match="not finite"):
        Batch().add(Delta(row, judgements=[{"node_id": "t/r", "reward": float("inf")}]))


# ---- 5. gold-initialisation failures, --retry-failed ---------------------------------------------
def test_failed_gold_initialisation_leaves_no_dangling_call_rows_and_retry_failed_reruns(
        tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 3)
    failing = build_helpers["write_config"](tmp_path / "f.yaml", failure_rate=1.0,
                                            max_consecutive_failures=2)
    db = tmp_path / "t.duckdb"
    s = run_build(BuildOptions(seeds=seeds, db=db, config=load_config(failing), random_seed=1)).to_dict()
    assert s["trees"]["failed"] == 3
    assert q(db, "SELECT count(*) FROM nodes") == [(0,)]
    assert q(db, "SELECT count(*) FROM llm_calls")[0][0] > 0
    assert q(db, "SELECT count(*) FROM llm_calls WHERE node_id IS NOT NULL AND node_id NOT IN "
                 "(SELECT node_id FROM nodes)") == [(0,)]
    working = build_helpers["write_config"](tmp_path / "w.yaml", max_consecutive_failures=2)
    # a plain resume keeps failed trees as they are
    s = run_build(BuildOptions(seeds=seeds, db=db, config=load_config(working), resume=True)).to_dict()
    assert s["trees"]["skipped"] == 3 and s["retried_trees"] == []
    with pytest.raises(EscproError, match="only with --resume"):
        run_build(BuildOptions(seeds=seeds, db=db, config=load_config(working), retry_failed=True))
    s = run_build(BuildOptions(seeds=seeds, db=db, config=load_config(working), resume=True,
                               retry_failed=True)).to_dict()
    assert s["trees"]["done"] == 3 and len(s["retried_trees"]) == 3
    assert q(db, "SELECT status, count(*) FROM trees GROUP BY status") == [("done", 3)]
    (retried,), = q(db, "SELECT retried_trees FROM runs WHERE retried_trees IS NOT NULL")
    assert sorted(json.loads(retried)) == sorted(s["retried_trees"])
    assert q(db, "SELECT count(*) FROM llm_calls WHERE node_id IS NOT NULL AND node_id NOT IN "
                 "(SELECT node_id FROM nodes)") == [(0,)]
