"""Issue 17 item 2: a build file opens in a DuckDB 1.x client (its own venv: pip install 'duckdb<2').

The client's venv comes from ESCPRO_DUCKDB1_PYTHON (.ci/run makes one) or is created here in the
user cache; without network access it cannot be created and the test skips, unless
ESCPRO_REQUIRE_DUCKDB1=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from escpro.cli import cli

CLIENT = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
out = {"version": duckdb.__version__}
for t in ("runs", "trees", "nodes", "judgements", "llm_calls"):
    out[t] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
out["best"] = con.execute("SELECT count(*) FROM nodes WHERE q IS NOT NULL AND depth = 1").fetchone()[0]
out["config_is_json"] = con.execute("SELECT json_valid(config::VARCHAR) FROM runs LIMIT 1").fetchone()[0]
print(json.dumps(out))
"""


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("ESCPRO_REQUIRE_DUCKDB1") == "1":
        pytest.fail(f"DuckDB 1.x client required (ESCPRO_REQUIRE_DUCKDB1=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def duckdb1_python() -> str:
    given = os.environ.get("ESCPRO_DUCKDB1_PYTHON")
    if given:
        return given
    venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "escpro" / "duckdb1-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
            subprocess.run([str(py), "-m", "pip", "install", "-q", "duckdb<2"], check=True, capture_output=True,
                           timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            _fail_or_skip(f"cannot create a venv with duckdb<2 ({str(exc).splitlines()[0][:200]})")
    return str(py)


def _build(tmp_path: Path, build_helpers) -> Path:
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 2)
    cfg = build_helpers["write_config"](tmp_path / "cfg.yaml")
    db = tmp_path / "trees.duckdb"
    res = CliRunner().invoke(cli, ["build", "--seeds", str(seeds), "--db", str(db), "--config", str(cfg),
                                   "--backend", "sim", "--random-seed", "0", "--json"])
    assert res.exit_code == 0, res.output
    return db


@pytest.mark.slow
def test_build_file_opens_in_duckdb_1x(tmp_path, build_helpers, duckdb1_python, monkeypatch):
    monkeypatch.delenv("ESCPRO_DUCKDB_STORAGE", raising=False)
    db = _build(tmp_path, build_helpers)
    proc = subprocess.run([duckdb1_python, "-c", CLIENT, str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert got["version"].startswith("1.")
    con = duckdb.connect(str(db), read_only=True)
    try:
        for t in ("runs", "trees", "nodes", "judgements", "llm_calls"):
            assert got[t] == con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] > 0
    finally:
        con.close()
    assert got["best"] > 0 and got["config_is_json"] is True


def test_storage_version_default_and_override(tmp_path, monkeypatch):
    from escpro.store.db import StoreError, connect

    def version(p):
        con = duckdb.connect(str(p), read_only=True)
        try:
            return con.execute("SELECT tags['storage_version'] FROM duckdb_databases() "
                               "WHERE NOT internal AND database_name = current_database()").fetchone()[0]
        finally:
            con.close()

    monkeypatch.delenv("ESCPRO_DUCKDB_STORAGE", raising=False)
    connect(tmp_path / "a.duckdb").close()
    assert version(tmp_path / "a.duckdb").startswith("v1.0.0")
    monkeypatch.setenv("ESCPRO_DUCKDB_STORAGE", "latest")
    connect(tmp_path / "b.duckdb").close()
    assert not version(tmp_path / "b.duckdb").startswith("v1.0.0")
    monkeypatch.setenv("ESCPRO_DUCKDB_STORAGE", "new please")
    with pytest.raises(StoreError, match="ESCPRO_DUCKDB_STORAGE='new please'"):
        connect(tmp_path / "c.duckdb")
