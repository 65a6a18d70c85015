"""Fixtures of the bad-input tests: good inputs built once, bad files of every kind, a really
read-only directory (a read-only tmpfs when running as root, where chmod does not stop writes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from escpro.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEMO_SEEDS = ROOT / "escpro" / "data" / "demo_seeds.json"
TINY = ROOT / "configs" / "build" / "tiny.yaml"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str]) -> Run:
    """One in-process `escpro` invocation, exactly as the console script runs it."""
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # escaped the CLI boundary: the bug the tests look for
    return Run(res.exit_code, res.stdout, res.stderr)


def assert_one_line_error(r: Run, what: str = "") -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.code in (1, 2), f"{what}: exit {r.code}, stderr {r.stderr!r}"
    assert "Traceback" not in r.stderr, f"{what}: {r.stderr}"
    assert len(lines) == 1, f"{what}: {len(lines)} lines on stderr: {r.stderr!r}"
    assert lines[0].startswith("error: "), f"{what}: {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="session")
def good(tmp_path_factory) -> dict[str, Path]:
    """A seeds file, a built DuckDB file, a test set and a predictions file, made by escpro."""
    d = tmp_path_factory.mktemp("good")
    seeds = d / "seeds.json"
    shutil.copy(DEMO_SEEDS, seeds)
    db = d / "trees.duckdb"
    r = run_cli(["build", "--seeds", seeds, "--db", db, "--config", TINY, "--backend", "sim",
                 "--limit", "2", "--random-seed", "0", "--no-progress"])
    assert r.code == 0, r.stderr
    ts = d / "test.jsonl"
    assert run_cli(["eval", "testset", "--seeds", seeds, "--out", ts]).code == 0
    run_dir = d / "run"
    r = run_cli(["eval", "run", "--model", "sim", "--testset", ts, "--out", run_dir, "--backend", "sim",
                 "--limit", "3"])
    assert r.code == 0, r.stderr
    eps = d / "endpoints.json"
    eps.write_text('{"reward": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}\n')
    return {"seeds": seeds, "db": db, "testset": ts, "predictions": run_dir / "predictions.jsonl",
            "run": run_dir, "config": TINY, "endpoints": eps, "dir": d}


def _deep(n: int = 50_000) -> str:
    return "[" * n + "]" * n


# name -> writer(path, good) creating the bad file at path (or nothing: "missing")
BAD_FILES: dict[str, Callable[[Path, dict], None]] = {
    "missing": lambda p, g: None,
    "directory": lambda p, g: p.mkdir(),
    "empty": lambda p, g: p.write_bytes(b""),
    "binary": lambda p, g: p.write_bytes(bytes(range(256)) * 16),
    "truncated_json": lambda p, g: p.write_text('[{"scene": "a", "content": [{"User": "hi"'),
    "deep_json": lambda p, g: p.write_text(_deep()),
    "wrong_shape": lambda p, g: p.write_text("42\n"),
    "surrogate": lambda p, g: p.write_text('{"x": "\\ud800"}\n'),
    "sqlite": lambda p, g: _sqlite(p),
    "text_as_db": lambda p, g: p.write_text("these are not the trees you are looking for\n"),
    "truncated_db": lambda p, g: p.write_bytes(g["db"].read_bytes()[:8192]),
}


def _sqlite(p: Path) -> None:
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE nodes (x INTEGER)")
    con.commit()
    con.close()


@pytest.fixture
def bad_file(tmp_path, good) -> Callable[[str, str], Path]:
    def make(kind: str, suffix: str) -> Path:
        p = tmp_path / f"bad-{kind}{suffix}"
        BAD_FILES[kind](p, good)
        return p

    return make


@pytest.fixture(scope="session")
def readonly_dir(tmp_path_factory):
    """A directory nothing can be written into, even by root."""
    d = tmp_path_factory.mktemp("ro")
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("running as root and cannot mount a read-only tmpfs")
    try:
        yield d
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", str(d)], check=False)


def leftovers(directory: Path) -> list[str]:
    """Temporary or partial files an interrupted writer would leave (a build's `.lock` file is
    not an output: it holds no data and is reused by the next build)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith((".tmp", ".part"))
                  or ".tmp" in p.name)
