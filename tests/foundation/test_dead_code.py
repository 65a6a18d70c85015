"""No dead code, no dependency nothing uses (issue 15.9): the sweep is a test, so it stays done.

vulture reads its settings from [tool.vulture] in pyproject.toml and the reasoned false positives
from vulture_whitelist.py; a finding here means: remove the code, or whitelist it with the reason
it is used."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Distributions whose import name is not their name with "-" -> "_".
IMPORT_NAMES = {"pyyaml": "yaml", "scikit-learn": "sklearn", "llama-cpp-python": "llama_cpp"}
# Dependencies escpro needs without importing them, and why.
NOT_IMPORTED = {
    "accelerate": "transformers' Trainer requires it; `accelerate launch` starts multi-GPU training",
    "tensorboard": "TRL's writer for train.report_to: tensorboard",
    "httpx": "FastAPI's TestClient (tests/ui)",
    "ruff": "the linter: ruff check escpro tests scripts",
}


def test_vulture_finds_no_dead_code():
    r = subprocess.run([sys.executable, "-m", "vulture"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and not r.stdout.strip(), (
        "dead code (remove it, or list it in vulture_whitelist.py with the reason it is used):\n"
        + r.stdout + r.stderr)


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()


def _used_modules() -> set[str]:
    """Top-level modules imported anywhere, plus exact string literals (importorskip("x"),
    find_spec("x"), importlib.resources.files("x"), `python -m x`)."""
    used: set[str] = set()
    for top in ("escpro", "scripts", "tests"):
        for src in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(src.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    used.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    used.add(node.module.split(".")[0])
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    used.add(node.value)
    return used


def test_every_dependency_is_used():
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    used = _used_modules()
    unused = []
    for name in sorted({_requirement_name(r) for r in reqs}):
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if module not in used and name not in NOT_IMPORTED:
            unused.append(name)
    assert not unused, f"in pyproject.toml but imported nowhere (remove them, or say why in NOT_IMPORTED): {unused}"
    stale = sorted(n for n in NOT_IMPORTED if n not in {_requirement_name(r) for r in reqs})
    assert not stale, f"NOT_IMPORTED names dependencies pyproject.toml no longer has: {stale}"
