"""escpro as a real package: every run-time file is package data found through
importlib.resources, and the metadata says which Python the code needs (issue 15.8)."""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

import pytest

import escpro
from escpro.paths import data_path

ROOT = Path(__file__).resolve().parents[2]
PKG = Path(escpro.__file__).resolve().parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _shipped(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pat) for pat in PYPROJECT["tool"]["setuptools"]["package-data"]["escpro"])


def test_every_non_python_file_in_the_package_is_package_data():
    """A run-time file left out of package-data would work from a checkout and fail installed."""
    files = [p.relative_to(PKG).as_posix() for p in PKG.rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert files, "no data files found"
    missing = sorted(f for f in files if not _shipped(f))
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"


@pytest.mark.parametrize("parts", [("taxonomy", "cso8.yaml"), ("taxonomy", "esconv8.yaml"),
                                   ("prompts", "reward.yaml"), ("demo", "sim.yaml"), ("demo", "gemma.yaml"),
                                   ("demo", "gemma3-turns.jinja"), ("eval", "paper_results.yaml"),
                                   ("demo_seeds.json",), ("demo_test_seeds.json",)])
def test_run_time_files_resolve_inside_the_package(parts):
    p = data_path(*parts)
    assert p.is_file() and PKG in p.parents


def test_the_package_reads_no_run_time_file_from_the_checkout():
    """Only the user-facing recipes stay in configs/ (build/, train/, deepspeed/), passed by path;
    nothing the package reads implicitly lives there, so configs/ and escpro/data/ hold no copies."""
    assert sorted(p.name for p in (ROOT / "configs").iterdir()) == ["build", "deepspeed", "train"]
    shipped = {p.name for p in (PKG / "data").rglob("*") if p.is_file()}
    recipes = {p.name for p in (ROOT / "configs").rglob("*") if p.is_file()}
    assert not shipped & recipes, shipped & recipes
    for src in PKG.rglob("*.py"):
        assert "configs_dir()" not in src.read_text() or src.name in ("paths.py", "launch.py"), src


def test_requires_python_matches_the_code():
    """The code uses Python 3.11 APIs (asyncio.timeout_at, tomllib here, datetime.UTC, ...)."""
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    used = set()
    for src in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                used.add(f"{node.value.id}.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module:
                used.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                used.update(a.name for a in node.names)
    py311 = {"asyncio.timeout_at", "asyncio.timeout", "asyncio.TaskGroup", "datetime.UTC", "tomllib",
             "typing.Self"}
    assert used & py311, "3.11 APIs no longer used?"


def test_docs_the_code_cites_are_in_the_repository():
    """Code cites docs/paper.md for the paper's facts, never a file outside the repository."""
    paper = (ROOT / "docs" / "paper.md").read_text()
    for src in [*PKG.rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        text = src.read_text()
        assert "PAPER_NOTES" not in text and "../shared" not in text, src
    for section in ("## 2.", "## 3.", "## 4.", "## 5.", "## 6."):
        assert section in paper, section
