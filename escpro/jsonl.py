"""Reading JSONL files of objects with one-line errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from escpro.errors import DataError


def iter_objects(path: Path) -> Iterator[tuple[int, str, dict]]:
    """(line number, where, record) for every non-blank line; where = "<path>: line N" for
    callers' own errors."""
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}: line {lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{where}: not an object")
            yield lineno, where, rec
