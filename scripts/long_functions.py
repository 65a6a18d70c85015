"""List functions longer than a limit (default 60 lines from `def` to the end, docstring included;
decorators such as click options are declarations and do not count).

    python scripts/long_functions.py escpro/train escpro/evaluate [--max 60]

Exits 1 when one is found, unless its docstring says why it is long (a line starting
"Long because"), the exception the developer guide allows.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def long_functions(paths: list[Path], limit: int) -> list[tuple[str, int, bool]]:
    """(file:line name, length, excused) for every function past `limit` lines."""
    found = []
    for root in paths:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for f in files:
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), str(f))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    doc = ast.get_docstring(node) or ""
                    excused = any(line.strip().startswith("Long because") for line in doc.splitlines())
                    found.append((f"{f}:{node.lineno} {node.name}", length, excused))
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--max", type=int, default=60)
    args = ap.parse_args()
    found = long_functions(args.paths, args.max)
    for where, length, excused in found:
        print(f"{where}: {length} lines{' (reason in docstring)' if excused else ''}")
    bad = [f for f in found if not f[2]]
    print(f"{len(bad)} function(s) past {args.max} lines without a reason", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
