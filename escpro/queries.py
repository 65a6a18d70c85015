"""`escpro query` as a library: read-only SQL over a build file, results in the format asked.

Formats: an aligned text table for the terminal (cells cut at max_width, control characters
escaped), and csv, json, jsonl, markdown and parquet with every value in full. JSON columns
(runs.config, runs.prompts, trees.seed) come back as JSON values, not as strings holding JSON.
Output files are written here in Python (never by SQL COPY: the connection is read-only and its
external access is off).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escpro.console import escape_controls
from escpro.errors import EscproError
from escpro.store.reader import open_read_only

FORMATS = ("table", "csv", "json", "jsonl", "markdown", "parquet")


class QueryError(EscproError):
    pass


@dataclass
class QueryResult:
    names: list[str]
    types: list[str]  # DuckDB type names (JSON columns are decoded from these)
    rows: list[tuple]
    arrow: Any = None  # a pyarrow Table, fetched only for parquet

    @property
    def json_columns(self) -> list[bool]:
        return [t == "JSON" for t in self.types]


def run_query(db: Path, sql: str, timeout_s: float = 30.0, *, arrow: bool = False) -> QueryResult:
    """Run one SQL statement read-only; SQL errors become one-line QueryErrors."""
    con = open_read_only(db, timeout_s=timeout_s)
    try:
        try:
            cur = con.execute(sql)
        except Exception as exc:  # DuckDB's parser/binder errors are the user's SQL errors
            msg = str(exc).splitlines()[0]
            raise QueryError(f"SQL error: {msg}") from None
        if cur.description is None:
            return QueryResult([], [], [])
        names = [d[0] for d in cur.description]
        types = [str(d[1]) for d in cur.description]
        if arrow:
            fetch = getattr(cur, "to_arrow_table", None) or cur.fetch_arrow_table
            return QueryResult(names, types, [], fetch())
        return QueryResult(names, types, cur.fetchall())
    finally:
        con.close()


def json_value(v: Any, is_json: bool = False) -> Any:
    """A cell as a JSON value (JSON columns decoded, dates ISO, decimals as numbers)."""
    if is_json and isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    return v


def text_value(v: Any, is_json: bool = False) -> str:
    """A cell as full text (csv, markdown): NULL is empty, lists/structs and JSON as JSON text."""
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list | tuple | dict):
        return json.dumps(json_value(v), ensure_ascii=False)
    if is_json:
        return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return str(json_value(v))


def _records(res: QueryResult) -> list[dict[str, Any]]:
    js = res.json_columns
    return [{n: json_value(v, j) for n, v, j in zip(res.names, r, js, strict=True)} for r in res.rows]


def _cell(v: Any, width: int | None, is_json: bool) -> str:
    if v is None:
        s = "NULL"
    elif isinstance(v, float):
        s = f"{v:.6g}"
    else:
        s = text_value(v, is_json)
    s = escape_controls(s, keep="")
    if width and len(s) > width:
        s = s[: width - 1] + "…"
    return s


def format_table(res: QueryResult, max_width: int | None = 60) -> str:
    """A plain aligned text table (numbers right-aligned) with a row count."""
    names, rows = [escape_controls(n, keep="") for n in res.names], res.rows
    cells = [[_cell(v, max_width, j) for v, j in zip(r, res.json_columns, strict=True)] for r in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    numeric = [
        all(isinstance(r[i], int | float | decimal.Decimal) or r[i] is None for r in rows)
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


def format_markdown(res: QueryResult) -> str:
    """A GitHub-flavoured markdown table, every value in full (| escaped, newlines as <br>)."""

    def md(s: str) -> str:
        return escape_controls(s.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>"))

    lines = ["| " + " | ".join(md(n) for n in res.names) + " |", "|" + "|".join(["---"] * len(res.names)) + "|"]
    for r in res.rows:
        lines.append("| " + " | ".join(md(text_value(v, j)) for v, j in zip(r, res.json_columns, strict=True)) + " |")
    return "\n".join(lines) + "\n"


def format_csv(res: QueryResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(res.names)
    for r in res.rows:
        w.writerow([text_value(v, j) for v, j in zip(r, res.json_columns, strict=True)])
    return buf.getvalue()


def render(res: QueryResult, fmt: str, max_width: int | None = 60) -> str:
    """Text formats; parquet is binary (write_parquet)."""
    if fmt == "table":
        return format_table(res, max_width) + "\n" if res.names else ""
    if fmt == "csv":
        return format_csv(res)
    if fmt == "json":
        return json.dumps(_records(res), ensure_ascii=False, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in _records(res))
    if fmt == "markdown":
        return format_markdown(res)
    raise QueryError(f"--format {fmt}: use one of {', '.join(FORMATS)}")


def parquet_bytes(res: QueryResult) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(res.arrow, buf)
    return buf.getvalue()


def read_sql(sql: str | None, sql_file: Path | None, stdin: Any) -> str:
    """The statement from the argument, a file (--file), or standard input ('-' or a pipe)."""
    if sql_file is not None and sql not in (None, "-"):
        raise QueryError("give the SQL either as an argument or with --file, not both")
    if sql_file is not None:
        try:
            text = Path(sql_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise QueryError(f"--file {sql_file}: cannot read ({exc.strerror or exc})") from None
    elif sql == "-" or (sql is None and not stdin.isatty()):
        text = stdin.read()
    elif sql is None:
        raise QueryError("no SQL: give it as an argument, with --file FILE, or on standard input")
    else:
        text = sql
    if not text.strip().strip(";").strip():
        raise QueryError("the SQL statement is empty: pass one, e.g. \"SELECT count(*) FROM nodes\"")
    return text
