"""`escpro query`: read-only SQL over a build file, safe while the build runs.

A running build holds the file only while it commits (open, write, close once per
commit_interval_s: store/db.py); the query opens it read-only between two commits, retrying for
a bounded time while a commit holds the lock. Formatting
and output files: escpro/queries.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from escpro import atomic
from escpro.cli_common import escpro_command
from escpro.queries import FORMATS, QueryError, parquet_bytes, read_sql, render
from escpro.queries import run_query as _run

HELP = """Run read-only SQL over a build's DuckDB file. Works while `escpro build` is writing it.

\b
SQL comes from the argument, from --file FILE, or from standard input ('-' or a pipe).
--format table (default; for the terminal: cells cut at --max-width characters, control
characters escaped) or csv, json, jsonl, markdown, parquet (every value in full; JSON columns
such as runs.config come back as JSON). --json is --format json. --output FILE writes the
result there instead of standard output (parquet needs it).

\b
Examples:
  escpro query --db trees.duckdb "SELECT status, count(*) FROM trees GROUP BY status"
  escpro query --db trees.duckdb --format jsonl "SELECT node_id, strategy, q, supporter_text FROM nodes WHERE is_end"
  escpro query --db trees.duckdb --format parquet --output nodes.parquet "SELECT * FROM nodes"
  echo "SELECT config FROM runs" | escpro query --db trees.duckdb --format json
"""


@escpro_command(name="query", help=HELP)
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The build's DuckDB file.")
@click.argument("sql", required=False)
@click.option("--file", "sql_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the SQL from this file.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default table; --json = json).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the result to FILE (written by escpro, atomically) instead of standard output.")
@click.option("--max-width", type=click.IntRange(min=0), default=60, show_default=True,
              help="--format table only: cut cells wider than this many characters (0: never).")
@click.option("--timeout", "timeout_s", type=float, default=30.0, show_default=True,
              help="Seconds to keep retrying while a running build holds the file (it lets go within its commit_interval_s).")
def query(db, sql, sql_file, fmt, output, max_width, timeout_s, as_json, log_level):  # noqa: ARG001
    if as_json and fmt not in (None, "json"):
        raise QueryError(f"--json and --format {fmt} disagree; give one")
    fmt = fmt or ("json" if as_json else "table")
    if fmt == "parquet" and output is None:
        raise QueryError("--format parquet writes a binary file: give --output FILE")
    text = read_sql(sql, sql_file, sys.stdin)
    res = _run(db, text, timeout_s, arrow=fmt == "parquet")
    if fmt == "parquet":
        data = parquet_bytes(res)
    else:
        data = render(res, fmt, max_width or None).encode("utf-8")
    if output is None:
        # not click.echo: it strips ANSI sequences from data when stdout is not a terminal
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(output, data)
    except OSError as exc:
        raise QueryError(f"--output {output}: cannot write ({exc.strerror or exc})") from None
    rows = res.arrow.num_rows if res.arrow is not None else len(res.rows)
    click.echo(f"wrote {rows} row{'s' if rows != 1 else ''} ({fmt}) to {output}", err=True)
