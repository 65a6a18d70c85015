"""`escpro query`: read-only SQL over a build file, safe while the build runs.

A running build keeps the file open between its commits; the query leaves a request for it
(store/db.py: readers_dir), the build closes the file after its next commit (within
commit_interval_s), and the query opens it read-only, retrying for a bounded time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import click

from escpro.cli_common import escpro_command
from escpro.errors import EscproError
from escpro.store.reader import open_read_only


class QueryError(EscproError):
    pass


def run_query(db: Path, sql: str, timeout_s: float = 30.0) -> tuple[list[str], list[tuple]]:
    con = open_read_only(db, timeout_s=timeout_s)
    try:
        try:
            cur = con.execute(sql)
        except Exception as exc:  # DuckDB's parser/binder errors are the user's SQL errors
            msg = str(exc).splitlines()[0]
            raise QueryError(f"SQL error: {msg}") from None
        if cur.description is None:
            return [], []
        names = [d[0] for d in cur.description]
        return names, cur.fetchall()
    finally:
        con.close()


def _cell(v, width: int | None) -> str:
    if v is None:
        s = "NULL"
    elif isinstance(v, float):
        s = f"{v:.6g}"
    elif isinstance(v, (dict, list)):
        s = json.dumps(v, ensure_ascii=False)
    else:
        s = str(v)
    s = s.replace("\n", "\\n")
    if width and len(s) > width:
        s = s[: width - 1] + "…"
    return s


def format_table(names: list[str], rows: list[tuple], max_width: int | None = 60) -> str:
    """A plain aligned text table (numbers right-aligned) with a row count."""
    cells = [[_cell(v, max_width) for v in r] for r in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    numeric = [
        all(isinstance(r[i], (int, float, decimal.Decimal)) or r[i] is None for r in rows)
        and any(r[i] is not None for r in rows)
        for i in range(len(names))
    ]

    def line(vals):
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric, strict=True)
        ).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out += [line(c) for c in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _json_value(v):
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


@escpro_command(name="query")
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The build's DuckDB file.")
@click.argument("sql")
@click.option("--max-width", type=int, default=60, show_default=True,
              help="Truncate cells wider than this in the table (0: never).")
@click.option("--timeout", "timeout_s", type=float, default=30.0, show_default=True,
              help="Seconds to keep retrying while a running build holds the file (it lets go within its commit_interval_s).")
def query(db, sql, max_width, timeout_s, config_path, as_json, log_level):
    """Run read-only SQL over a build's DuckDB file and print a table (or --json rows).
    Works while `escpro build` is writing the same file.

    \b
    Examples:
      escpro query --db trees.duckdb "SELECT status, count(*) FROM trees GROUP BY status"
      escpro query --db trees.duckdb --json "SELECT node_id, strategy, q, n FROM nodes WHERE is_end"
    """
    names, rows = run_query(db, sql, timeout_s)
    if as_json:
        click.echo(json.dumps(
            [{n: _json_value(v) for n, v in zip(names, r, strict=True)} for r in rows],
            ensure_ascii=False, default=str))
    elif names:
        click.echo(format_table(names, rows, max_width or None))
