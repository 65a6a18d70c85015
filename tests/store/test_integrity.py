"""Data integrity (issue 13, items 1, 2, 4 and the dangling-row / retry-failed defects), each test
named after its defect. Real DuckDB files, the real CLI, the simulator served over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from escpro.cli import cli
from escpro.commands.query import run_query
from escpro.config import load_config
from escpro.errors import EscproError
from escpro.mcts.runner import BuildOptions, run_build
from escpro.store.schema import DATA_RULES_VERSION

ROLES = ("seeker", "supporter", "strategy", "reward")


def escpro(*args) -> list[str]:
    return [sys.executable, "-m", "escpro", *map(str, args)]


def run_cli(*args, timeout=240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(escpro(*args), capture_output=True, text=True, timeout=timeout, env=env)


def q(db, sql, params=None):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def one_line_error(res) -> str:
    err = res.stderr.strip()
    assert res.returncode in (1, 2) if hasattr(res, "returncode") else res.exit_code in (1, 2), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def search_only_config(path: Path, **build) -> Path:
    """A build config without roles (the roles come from --endpoints/--backend/the record)."""
    cfg = {"build": {"sim_max_rounds": 2, "min_iterations": 8, "max_iterations": 12,
                     "min_end_nodes": 1, "max_end_nodes": 10, "concurrent_trees": 4,
                     "commit_interval_s": 0.05, **build}}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


class SimServe:
    """`escpro serve --engine sim` as a real subprocess on a free loopback port. With `model`,
    the endpoints file names another model (the server answers any name), so the data counts as
    a model's rather than the simulator's (model 'sim')."""

    def __init__(self, eps: Path, latency_ms: float = 0.0, model: str | None = "served-model"):
        self.eps = eps
        self.proc = subprocess.Popen(
            escpro("serve", "--engine", "sim", "--port", 0, "--latency-ms", latency_ms,
                   "--endpoints-out", eps),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
        deadline = time.monotonic() + 30
        while not eps.exists():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "sim server did not start"
            time.sleep(0.05)
        if model is not None:
            data = json.loads(eps.read_text())
            eps.write_text(json.dumps({r: {**ep, "model": model} for r, ep in data.items()}))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- 1. no silent simulator ------------------------------------------------------------------
def test_build_without_roles_stops_with_one_line_and_leaves_no_file(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 2)
    db = tmp_path / "t.duckdb"
    res = CliRunner().invoke(cli, ["build", "--seeds", str(seeds), "--db", str(db),
                                   "--config", str(search_only_config(tmp_path / "c.yaml"))])
    err = res.stderr.strip()
    assert res.exit_code == 1 and len(err.splitlines()) == 1
    assert "no role has a backend" in err and "--endpoints" in err and "--backend sim" in err
    assert not db.exists() and not Path(f"{db}.wal").exists()
    # one role missing is named
    partial = {"roles": {r: {"backend": "sim"} for r in ROLES if r != "reward"}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(partial))
    res = CliRunner().invoke(cli, ["build", "--seeds", str(seeds), "--db", str(db),
                                   "--config", str(tmp_path / "p.yaml")])
    assert res.exit_code == 1 and "no backend for the reward role" in res.stderr


def test_sim_runs_only_when_named_and_every_run_records_its_roles(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 2)
    db = tmp_path / "t.duckdb"
    cfg = load_config(search_only_config(tmp_path / "c.yaml"))
    s = run_build(BuildOptions(seeds=seeds, db=db, config=cfg, backend="sim", random_seed=1))
    assert s["trees"]["done"] == 2 and s["sim_roles"] == list(ROLES)
    (roles, rules), = q(db, "SELECT roles, data_rules_version FROM runs")
    roles = json.loads(roles)
    assert rules == DATA_RULES_VERSION
    assert {r: (b["backend"], b["model"]) for r, b in roles.items()} == {r: ("sim", "sim") for r in ROLES}


@pytest.mark.slow
def test_http_build_killed_and_resumed_the_readme_way_stays_on_its_endpoints(tmp_path, build_helpers):
    """The measured defect: a build over --endpoints, killed, resumed with `--resume` only, went
    on with the simulator (1,103 of 1,632 calls). Now the recorded roles are reused."""
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 4)
    cfg = search_only_config(tmp_path / "c.yaml", min_iterations=20, max_iterations=24,
                             concurrent_trees=2, commit_interval_s=0.1)
    db = tmp_path / "t.duckdb"
    srv = SimServe(tmp_path / "eps.json", latency_ms=5)
    try:
        proc = subprocess.Popen(
            escpro("build", "--seeds", seeds, "--db", db, "--config", cfg, "--endpoints",
                   tmp_path / "eps.json", "--random-seed", 3, "--no-progress"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                _, rows = run_query(db, "SELECT count(*) FROM llm_calls", timeout_s=20)
            except EscproError:
                continue
            if rows[0][0] >= 150:
                break
        assert proc.poll() is None, "the build finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert q(db, "SELECT count(*) FROM trees WHERE status <> 'done'")[0][0] > 0
        res = run_cli("build", "--seeds", seeds, "--db", db, "--config", cfg, "--resume",
                      "--no-progress", "--json")
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert summary["sim_roles"] == [] and summary["trees"]["failed"] == 0
    finally:
        srv.stop()
    assert q(db, "SELECT status, count(*) FROM trees GROUP BY status") == [("done", 4)]
    assert q(db, "SELECT DISTINCT backend FROM llm_calls") == [("openai",)]
    runs = q(db, "SELECT roles FROM runs ORDER BY started_at")
    assert len(runs) == 2 and json.loads(runs[0][0]) == json.loads(runs[1][0])
    # and the extract lists what produced the data
    out = tmp_path / "esc"
    assert run_cli("extract", "--db", db, "--out", out).returncode == 0
    man = json.loads((out / "manifest.json").read_text())
    assert {(s["backend"], s["model"]) for s in man["sources"]} == {("openai", "served-model")}
    assert man["warnings"] == [] and len(man["run_roles"]) == 2


@pytest.mark.slow
def test_resume_refuses_other_roles_naming_the_differences(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 2)
    cfg = search_only_config(tmp_path / "c.yaml")
    db = tmp_path / "t.duckdb"
    srv = SimServe(tmp_path / "eps.json")
    srv2 = SimServe(tmp_path / "eps2.json")
    try:
        assert run_cli("build", "--seeds", seeds, "--db", db, "--config", cfg, "--endpoints",
                       tmp_path / "eps.json", "--limit", 1, "--no-progress").returncode == 0
        before = hashlib.sha256(db.read_bytes()).hexdigest()
        # the simulator instead of the recorded server: never
        res = run_cli("build", "--seeds", seeds, "--db", db, "--config", cfg, "--resume",
                      "--backend", "sim", "--no-progress")
        assert "mix simulator and model answers" in one_line_error(res)
        # nor the simulator served over HTTP, not even with --allow-role-change
        srv3 = SimServe(tmp_path / "eps3.json", model=None)
        try:
            res = run_cli("build", "--seeds", seeds, "--db", db, "--config", cfg, "--resume",
                          "--endpoints", tmp_path / "eps3.json", "--allow-role-change",
                          "--no-progress")
            assert "mix simulator and model answers" in one_line_error(res)
        finally:
            srv3.stop()
        # another server: the differences are named; allowed with --allow-role-change
        res = run_cli("build", "--seeds", seeds, "--db", db, "--config", cfg, "--resume",
                      "--endpoints", tmp_path / "eps2.json", "--no-progress")
        err = one_line_error(res)
        assert "other roles than the run recorded" in err and "seeker.base_url was" in err
        assert "--allow-role-change" in err
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
        res = run_cli("build", "--seeds", seeds, "--db", db, "--config", cfg, "--resume",
                      "--endpoints", tmp_path / "eps2.json", "--allow-role-change", "--no-progress")
        assert res.returncode == 0, res.stderr
    finally:
        srv.stop()
        srv2.stop()
    (change,), = q(db, "SELECT role_change FROM runs WHERE role_change IS NOT NULL")
    change = json.loads(change)
    assert change["allowed_by"] == "--allow-role-change"
    assert any(d.startswith("reward.base_url was") for d in change["differences"])


def test_resume_refuses_trees_built_under_older_data_rules(tmp_path, good):
    db = tmp_path / "old.duckdb"
    db.write_bytes(good["db"].read_bytes())
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET data_rules_version = NULL")
    con.close()
    res = CliRunner().invoke(cli, ["build", "--seeds", str(good["seeds"]), "--db", str(db),
                                   "--config", str(good["cfg"]), "--resume"])
    err = res.stderr.strip()
    assert res.exit_code == 1 and len(err.splitlines()) == 1
    assert "older data rules" in err and "must be rebuilt" in err


@pytest.mark.slow
def test_extract_refuses_to_mix_simulator_and_model_data_unless_allowed(tmp_path, build_helpers):
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 4)
    cfg = search_only_config(tmp_path / "c.yaml")
    srv = SimServe(tmp_path / "eps.json")
    try:
        assert run_cli("build", "--seeds", seeds, "--db", tmp_path / "a.duckdb", "--config", cfg,
                       "--shard", "0/2", "--endpoints", tmp_path / "eps.json",
                       "--no-progress").returncode == 0
    finally:
        srv.stop()
    assert run_cli("build", "--seeds", seeds, "--db", tmp_path / "b.duckdb", "--config", cfg,
                   "--shard", "1/2", "--backend", "sim", "--no-progress").returncode == 0
    mixed = tmp_path / "mixed.duckdb"
    assert run_cli("merge", mixed, tmp_path / "a.duckdb", tmp_path / "b.duckdb").returncode == 0
    res = run_cli("extract", "--db", mixed, "--out", tmp_path / "x")
    err = one_line_error(res)
    assert "mix simulator and model answers" in err and "--allow-sim" in err
    assert not (tmp_path / "x").exists()
    res = run_cli("extract", "--db", mixed, "--out", tmp_path / "x", "--allow-sim")
    assert res.returncode == 0, res.stderr
    man = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert {s["backend"] for s in man["sources"]} == {"openai", "sim"}
    assert any("--allow-sim" in w for w in man["warnings"])
    # a simulator-only dataset is said to be one
    assert run_cli("extract", "--db", tmp_path / "b.duckdb", "--out", tmp_path / "y").returncode == 0
    man = json.loads((tmp_path / "y" / "manifest.json").read_text())
    assert any("simulator" in w for w in man["warnings"])


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
                if run_query(db, "SELECT count(*) FROM runs", timeout_s=20)[1][0][0]:
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
    s = run_build(BuildOptions(seeds=seeds, db=db, config=load_config(failing), random_seed=1))
    assert s["trees"]["failed"] == 3
    assert q(db, "SELECT count(*) FROM nodes") == [(0,)]
    assert q(db, "SELECT count(*) FROM llm_calls")[0][0] > 0
    assert q(db, "SELECT count(*) FROM llm_calls WHERE node_id IS NOT NULL AND node_id NOT IN "
                 "(SELECT node_id FROM nodes)") == [(0,)]
    working = build_helpers["write_config"](tmp_path / "w.yaml", max_consecutive_failures=2)
    # a plain resume keeps failed trees as they are
    s = run_build(BuildOptions(seeds=seeds, db=db, config=load_config(working), resume=True))
    assert s["trees"]["skipped"] == 3 and s["retried_trees"] == []
    with pytest.raises(EscproError, match="only with --resume"):
        run_build(BuildOptions(seeds=seeds, db=db, config=load_config(working), retry_failed=True))
    s = run_build(BuildOptions(seeds=seeds, db=db, config=load_config(working), resume=True,
                               retry_failed=True))
    assert s["trees"]["done"] == 3 and len(s["retried_trees"]) == 3
    assert q(db, "SELECT status, count(*) FROM trees GROUP BY status") == [("done", 3)]
    (retried,), = q(db, "SELECT retried_trees FROM runs WHERE retried_trees IS NOT NULL")
    assert sorted(json.loads(retried)) == sorted(s["retried_trees"])
    assert q(db, "SELECT count(*) FROM llm_calls WHERE node_id IS NOT NULL AND node_id NOT IN "
                 "(SELECT node_id FROM nodes)") == [(0,)]
