"""Issue 17 item 2: `escpro query` formats, output files, SQL from a file or stdin, JSON columns as
JSON, full values outside the table, control characters escaped in the table."""

from __future__ import annotations

import csv
import io
import json

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.store.db import ensure_schema

LONG = "x" * 150


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A file with escpro's JSON column type, a long text and a hostile one (ANSI + newline)."""
    p = tmp_path_factory.mktemp("q") / "t.duckdb"
    con = duckdb.connect(str(p))
    ensure_schema(con)  # an escpro build file (escpro query refuses others) with one more table
    con.execute("CREATE TABLE qt (run_id TEXT, config JSON, n INTEGER, tags TEXT[])")
    con.execute("INSERT INTO qt VALUES ('r1', '{\"build\": {\"max_iterations\": 3}}', 1, ['a', 'b']), "
                f"('r2', NULL, 2, []), ('{LONG}', '[1, 2]', 3, NULL), "
                "('evil' || chr(27) || '[31mred' || chr(10) || 'line|pipe', '\"s\"', 4, NULL)")
    con.close()
    return p


def q(db, *args, input=None):
    return CliRunner().invoke(cli, ["query", "--db", str(db), *map(str, args)], input=input)


def test_json_columns_are_json_and_values_full(db):
    res = q(db, "--format", "json", "SELECT * FROM qt ORDER BY n")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows[0]["config"] == {"build": {"max_iterations": 3}} and rows[0]["tags"] == ["a", "b"]
    assert rows[1]["config"] is None and rows[2]["config"] == [1, 2] and rows[2]["run_id"] == LONG
    assert rows[3]["config"] == "s"
    res = q(db, "--format", "jsonl", "SELECT run_id, config FROM qt ORDER BY n")
    assert [json.loads(x)["run_id"] for x in res.stdout.splitlines()][2] == LONG
    assert json.loads(q(db, "--json", "SELECT config FROM qt WHERE n = 1").stdout) == [
        {"config": {"build": {"max_iterations": 3}}}]


def test_csv_and_markdown_keep_full_values(db):
    rows = list(csv.reader(io.StringIO(q(db, "--format", "csv", "SELECT run_id, config, tags FROM qt ORDER BY n").stdout)))
    assert rows[0] == ["run_id", "config", "tags"] and rows[3][0] == LONG
    assert json.loads(rows[1][1]) == {"build": {"max_iterations": 3}} and json.loads(rows[1][2]) == ["a", "b"]
    assert rows[4][0] == "evil\x1b[31mred\nline|pipe"  # csv is data: kept exactly
    md = q(db, "--format", "markdown", "SELECT run_id FROM qt ORDER BY n").stdout
    assert LONG in md and "line\\|pipe" in md and "\x1b" not in md and "red<br>line" in md


def test_table_cuts_at_max_width_and_escapes_control_characters(db):
    out = q(db, "SELECT run_id FROM qt ORDER BY n").stdout
    assert "\x1b" not in out and "\\e[31mred\\nline" in out
    assert "x" * 59 + "…" in out and LONG not in out
    assert LONG in q(db, "--max-width", "0", "SELECT run_id FROM qt").stdout


def test_sql_from_file_and_stdin(db, tmp_path):
    f = tmp_path / "q.sql"
    f.write_text("SELECT count(*) AS n FROM qt\n")
    assert json.loads(q(db, "--file", f, "--json").stdout) == [{"n": 4}]
    assert json.loads(q(db, "--json", input="SELECT max(n) AS m FROM qt").stdout) == [{"m": 4}]
    assert json.loads(q(db, "-", "--json", input="SELECT min(n) AS m FROM qt").stdout) == [{"m": 1}]
    res = q(db, "SELECT 1", "--file", f)
    assert res.exit_code != 0 and "not both" in res.stderr


def test_output_files_written_by_escpro(db, tmp_path):
    out = tmp_path / "sub" / "runs.parquet"
    res = q(db, "--format", "parquet", "--output", out, "SELECT * FROM qt")
    assert res.exit_code == 0, res.output
    assert "wrote 4 rows (parquet)" in res.stderr and res.stdout == ""
    table = pq.read_table(out)
    assert table.num_rows == 4 and table.column_names == ["run_id", "config", "n", "tags"]
    csv_out = tmp_path / "runs.csv"
    assert q(db, "--format", "csv", "-o", csv_out, "SELECT n FROM qt ORDER BY n").exit_code == 0
    assert csv_out.read_text().split() == ["n", "1", "2", "3", "4"]
    res = q(db, "--format", "parquet", "SELECT 1")
    assert res.exit_code != 0 and "--output" in res.stderr
    res = q(db, "--format", "csv", "--json", "SELECT 1")
    assert res.exit_code != 0 and "disagree" in res.stderr


def test_sql_cannot_change_the_database(db):
    # (COPY ... TO a file is the store's read-only connection's business: external access off)
    res = q(db, "DELETE FROM qt")
    assert res.exit_code != 0 and res.stderr.startswith("error: SQL error")
