"""No silent simulator (issue 13, data integrity 1): roles are given or the build stops; every
run records its roles and data rules; --resume reuses them and refuses others; extract lists
what produced the data and refuses simulator/model mixes. The simulator served over real HTTP
(`escpro serve --engine sim`), real DuckDB files, the real CLI."""

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

from escpro.build.run import BuildOptions, run_build
from escpro.cli import cli
from escpro.config import load_config
from escpro.errors import EscproError
from escpro.queries import run_query
from escpro.store.schema import DATA_RULES_VERSION

sys.path.insert(0, str(Path(__file__).parent))
from integrity_helpers import (  # noqa: E402
    ROLES,
    SimServe,
    escpro,
    one_line_error,
    q,
    run_cli,
    search_only_config,
)


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
    s = run_build(BuildOptions(seeds=seeds, db=db, config=cfg, backend="sim", random_seed=1)).to_dict()
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
                rows = run_query(db, "SELECT count(*) FROM llm_calls", timeout_s=20).rows
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


def test_resume_refuses_other_reward_math(tmp_path, good):
    """reward_alpha/reward_bias/prior_temperature decide every Q value: a resumed build keeps them."""
    db = tmp_path / "t.duckdb"
    db.write_bytes(good["db"].read_bytes())
    cfg = yaml.safe_load(good["cfg"].read_text())
    cfg["roles"]["reward_alpha"] = 5.0
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(cli, ["build", "--seeds", str(good["seeds"]), "--db", str(db),
                                   "--config", str(tmp_path / "c.yaml"), "--resume"])
    assert res.exit_code == 1 and "roles.reward_alpha was 7.0, now 5.0" in res.stderr
