"""A full disk stops a build with one line and loses nothing: the build runs on a real, small
tmpfs (mounted for the test; needs root, skipped otherwise), stops at ENOSPC, and the file,
moved to a roomy disk, resumes to exactly the rows of an uninterrupted build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.errors.conftest import DEMO_SEEDS, ROOT
from tests.helpers import db_rows

CONFIG = """
roles:
  seeker: {backend: sim, model: sim}
  supporter: {backend: sim, model: sim}
  strategy: {backend: sim, model: sim, temperature: 0.0}
  reward: {backend: sim, model: sim, temperature: 0.0}
build: {sim_max_rounds: 2, min_iterations: 30, max_iterations: 30, min_end_nodes: 1,
        max_end_nodes: 30, concurrent_trees: 6, commit_interval_s: 0.05}
"""


def _build(db, cfg, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "escpro", "build", "--seeds", str(DEMO_SEEDS), "--db", str(db),
         "--config", str(cfg), "--backend", "sim", "--random-seed", "0", "--no-progress", *extra],
        capture_output=True, text=True, env=env, timeout=300)


def _rows(db):
    return db_rows(db, "SELECT node_id, kind, strategy, q, n, supporter_text, seeker_text "
                       "FROM nodes ORDER BY node_id")


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    d = tmp_path / "small"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


@pytest.mark.slow
def test_full_disk_stops_the_build_with_one_line_and_loses_nothing(tmp_path, small_disk):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    ref = tmp_path / "ref.duckdb"
    assert _build(ref, cfg).returncode == 0
    r = _build(small_disk / "t.duckdb", cfg)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "no space left on the device" in lines[0] and "Traceback" not in r.stderr
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    for f in small_disk.iterdir():  # what a user does: free space (here: move the file)
        shutil.copy(f, roomy / f.name)
    r = _build(roomy / "t.duckdb", cfg, "--resume")
    assert r.returncode == 0, r.stderr
    assert _rows(roomy / "t.duckdb") == _rows(ref)


def test_atomic_write_on_a_full_disk_names_the_target_and_leaves_nothing(small_disk):
    from escpro import atomic

    target = small_disk / "out.jsonl"
    with pytest.raises(OSError) as info:
        atomic.write_text(target, "x" * (4 << 20))
    assert info.value.errno == 28 and info.value.filename == str(target)
    assert list(small_disk.iterdir()) == []
