"""A real small sim build, its extraction, a test set and two real `escpro eval run` outputs
(sim backend, two decoding baselines), made once per session through the CLI."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from escpro.cli import cli

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class UiData:
    db: Path
    pairs: Path
    testset: Path
    eval_sft: Path
    eval_cso: Path
    root: Path


def _run(args: list[str]) -> None:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="session")
def ui_data(tmp_path_factory) -> UiData:
    d = tmp_path_factory.mktemp("uidata")
    db = d / "trees.duckdb"
    _run(["build", "--seeds", str(REPO / "escpro/data/demo_seeds.json"), "--db", str(db), "--backend", "sim",
          "--config", str(REPO / "configs/build/tiny.yaml"), "--random-seed", "0", "--no-progress", "--limit", "3"])
    _run(["extract", "--db", str(db), "--out", str(d / "esc-pro")])
    ts = d / "test.jsonl"
    _run(["eval", "testset", "--seeds", str(REPO / "escpro/data/demo_test_seeds.json"), "--out", str(ts)])
    for name, extra in (("sft", []), ("cso", ["--baseline", "direct-refine"])):
        _run(["eval", "run", "--backend", "sim", "--model", "sim", "--testset", str(ts), "--out", str(d / name),
              "--name", name, "--method", name.upper(), "--limit", "3", "--json", *extra])
    return UiData(db, d / "esc-pro", ts, d / "sft", d / "cso", d)


def fleiss_by_hand(table: list[list[int]]) -> float:
    """Fleiss (1971): P_i = (sum n_ij^2 - n) / (n(n-1)), p_j = column share, kappa = (P - Pe) / (1 - Pe)."""
    import numpy as np

    t = np.array(table, dtype=float)
    n = t.sum(axis=1)[0]
    p_i = ((t * t).sum(axis=1) - n) / (n * (n - 1))
    p_j = t.sum(axis=0) / t.sum()
    pbar, pe = p_i.mean(), (p_j * p_j).sum()
    return float((pbar - pe) / (1 - pe))


@pytest.fixture
def hand_kappa():
    """The textbook formula, to check statsmodels' result against (test modules cannot import conftest)."""
    return fleiss_by_hand


def chromium_path() -> str | None:
    for p in (os.environ.get("ESCPRO_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if p and Path(p).is_file():
            return p
    return None


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser(ui_data):
    """Debian's chromium driven by Playwright; skips (fails under ESCPRO_REQUIRE_BROWSER=1) when absent.

    Depends on ui_data so the data is built first: Playwright's sync API keeps an event loop
    running in this thread, where `escpro build` could not start its own."""
    exe = chromium_path()
    why = None
    if exe is None:
        why = "no chromium executable (apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            why = "playwright is not installed (pip install playwright; the dev extra has it)"
    if why:
        if os.environ.get("ESCPRO_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ESCPRO_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
