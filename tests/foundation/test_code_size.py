"""Size limits the developer guide sets, checked over the source: no module past ~400 lines and
no function past ~60 lines unless its docstring says why (a line starting "Long because"). One
implementation, scripts/long_functions.py, serves this test and people at the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / "escpro", REPO / "scripts"]
SCRIPT = REPO / "scripts" / "long_functions.py"
MAX_FILE_LINES = 420  # "~400": a little slack for a docstring or an import
MAX_FUNCTION_LINES = 60


def _module():
    return load_script(SCRIPT)


def test_no_file_past_the_limit():
    files = sorted(p for root in SOURCES for p in root.rglob("*.py"))
    assert len(files) > 50 and REPO / "escpro" / "cli.py" in files
    big = [f"{p.relative_to(REPO)} ({n} lines)" for p in files
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES]
    assert not big, "split by concept: " + ", ".join(big)


def test_no_function_past_the_limit_without_a_reason():
    found = _module().long_functions(SOURCES, MAX_FUNCTION_LINES)
    bad = [f"{where} ({n} lines)" for where, n, excused in found if not excused]
    assert not bad, "split by concept, or start a docstring line with 'Long because': " + ", ".join(bad)


def test_the_check_finds_a_long_function_and_accepts_a_reason(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    (tmp_path / "m.py").write_text(
        f"def long():\n{body}\n\ndef excused():\n    \"\"\"Long because it is a table.\"\"\"\n{body}"
        "\n\ndef short():\n    return 1\n")
    found = _module().long_functions([tmp_path], 60)
    assert [(w.split()[-1], n, ok) for w, n, ok in found] == [("long", 61, False), ("excused", 62, True)]
    res = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 1 and "m.py:1 long: 61 lines" in res.stdout
