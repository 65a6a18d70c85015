"""The row types are the schema: the DDL comes from them, the README documents exactly their
columns, and a file made by the DDL has exactly their columns and types."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import duckdb
import pytest

from escpro.store.db import ensure_schema
from escpro.store.schema import COLUMNS, DDL, ROW_TYPES, RowError, check_row

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_columns() -> dict[str, set[str]]:
    """table -> the column names the README's schema section lists (a table's first column,
    or the `backticked` names of the prose paragraph)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Tables (`escpro/store/schema.py`", 1)[1].split("\n### ", 1)[0]
    out: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=\*\*\w+\*\*)", section):
        m = re.match(r"\*\*(\w+)\*\*", block)
        if not m:
            continue
        names: set[str] = set()
        rows = [ln for ln in block.splitlines() if ln.startswith("| ") and not ln.startswith("| column")]
        if rows:
            for ln in rows:
                names |= {c.strip() for c in ln.split("|")[1].split(",")}
        else:
            names = {n for n in re.findall(r"`(\w+)`", block)}
        out[m.group(1)] = names
    return out


def test_readme_lists_exactly_the_columns_of_the_row_types():
    documented = readme_columns()
    assert set(documented) == set(ROW_TYPES)
    for table, cls in ROW_TYPES.items():
        cols = {f.name for f in fields(cls)}
        assert documented[table] >= cols, (table, sorted(cols - documented[table]))
        # prose may name other things in backticks (formulas, values); tables must not
        extra = documented[table] - cols
        assert not extra or table in ("judgements", "llm_calls"), (table, extra)


def test_a_file_created_from_the_ddl_has_the_row_types_columns(tmp_path):
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    ensure_schema(con)
    for table, cols in COLUMNS.items():
        got = [(r[1], r[2]) for r in con.execute(f"PRAGMA table_info('{table}')").fetchall()]
        want = [(c, "VARCHAR" if t == "TEXT" else t) for c, t in cols]
        assert got == want, table
    keys = con.execute("SELECT table_name, constraint_type FROM duckdb_constraints() "
                       "WHERE constraint_type = 'PRIMARY KEY' ORDER BY 1").fetchall()
    assert keys == [("llm_calls", "PRIMARY KEY"), ("nodes", "PRIMARY KEY"), ("runs", "PRIMARY KEY"),
                    ("trees", "PRIMARY KEY")]
    assert "tree_id TEXT NOT NULL" in DDL and "schema_version INTEGER NOT NULL" in DDL


def test_check_row_names_what_is_wrong():
    row = {c: None for c, _ in COLUMNS["llm_calls"]}
    check_row("llm_calls", row)
    with pytest.raises(RowError, match=r"llm_calls row: unknown key priority; missing cached"):
        check_row("llm_calls", {**{k: v for k, v in row.items() if k != "cached"}, "priority": 1})
