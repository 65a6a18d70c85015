"""Helpers of the integrity tests: the CLI as a subprocess, read-only SQL, one-line error
checks, a config without roles, and `escpro serve --engine sim` as a real server process.
(Imported by path: tests are not a package.)"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.helpers import db_rows

ROLES = ("seeker", "supporter", "strategy", "reward")


def sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def escpro(*args) -> list[str]:
    return [sys.executable, "-m", "escpro", *map(str, args)]


def run_cli(*args, timeout=240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(escpro(*args), capture_output=True, text=True, timeout=timeout, env=env)


q = db_rows  # the integrity tests' short name


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
