"""Foreign and damaged database files (issue 13, data integrity 3): every command that opens one
(build, resume, extract, stats, tree, query, merge) stops with one line, and the file is left
exactly as it was. Real DuckDB and SQLite files, the real CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from escpro.cli import cli


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def make_bad(kind: str, d: Path, good: dict) -> Path:
    p = d / f"{kind}.duckdb"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is a note, not a database\n" * 20)
    elif kind == "sqlite":
        con = sqlite3.connect(p)
        con.execute("CREATE TABLE notes (x TEXT)")
        con.commit()
        con.close()
    elif kind == "truncated":
        p.write_bytes(good["db"].read_bytes()[:5000])
    elif kind == "corrupt":
        data = bytearray(good["db"].read_bytes())
        data[4096:12288] = bytes(range(256)) * 32
        p.write_bytes(bytes(data))
    elif kind == "foreign":
        con = duckdb.connect(str(p))
        con.execute("CREATE TABLE customers (id INT, name TEXT); INSERT INTO customers VALUES (1, 'a')")
        con.close()
    elif kind == "newer":
        shutil.copy(good["db"], p)
        con = duckdb.connect(str(p))
        con.execute("UPDATE runs SET schema_version = 99")
        con.close()
    return p


KINDS = ["empty", "text", "sqlite", "truncated", "corrupt", "foreign", "newer"]
COMMANDS = ["build", "resume", "extract", "stats", "tree", "query", "merge-in", "merge-out"]


def argv(cmd: str, bad: Path, good: dict, tmp: Path) -> list[str]:
    b = ["build", "--seeds", str(good["seeds"]), "--db", str(bad), "--config", str(good["cfg"]),
         "--backend", "sim", "--no-progress"]
    return {
        "build": b,
        "resume": [*b, "--resume"],
        "extract": ["extract", "--db", str(bad), "--out", str(tmp / "x")],
        "stats": ["stats", "--db", str(bad), "--out", str(tmp / "s")],
        "tree": ["tree", "--db", str(bad)],
        "query": ["query", "--db", str(bad), "SELECT 1"],
        "merge-in": ["merge", str(tmp / "merged.duckdb"), str(bad)],
        "merge-out": ["merge", str(bad), str(good["db"])],
    }[cmd]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_or_foreign_file_is_one_line_for_every_command(kind, good, tmp_path):
    bad = make_bad(kind, tmp_path, good)
    before = sha(bad)
    for cmd in COMMANDS:
        res = CliRunner().invoke(cli, argv(cmd, bad, good, tmp_path))
        err = res.stderr.strip()
        assert res.exit_code in (1, 2), (kind, cmd, res.output, res.exception)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (kind, cmd, err)
        assert str(bad) in err or bad.name in err, (kind, cmd, err)
        assert sha(bad) == before, (kind, cmd, "the file was changed")
        assert not Path(f"{bad}.wal").exists()
    assert not (tmp_path / "x").exists() and not (tmp_path / "s").exists()


def test_messages_say_what_the_file_is(good, tmp_path):
    expect = {
        "empty": "empty file", "text": "not a DuckDB database file", "sqlite": "an SQLite database",
        "truncated": "damaged or truncated", "corrupt": "damaged or truncated",
        "foreign": "not an escpro build file (it holds other tables: customers)",
        "newer": "schema 99",
    }
    for kind, words in expect.items():
        bad = make_bad(kind, tmp_path, good)
        res = CliRunner().invoke(cli, argv("resume", bad, good, tmp_path))
        assert words in res.stderr, (kind, res.stderr)


def test_sqlite_file_never_makes_duckdb_fetch_an_extension(good, tmp_path, monkeypatch):
    """DuckDB would autoload (download) its sqlite extension; escpro disables that everywhere."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    bad = make_bad("sqlite", tmp_path, good)
    from escpro.store.db import StoreError, connect

    for ro in (True, False):
        with pytest.raises(StoreError, match="SQLite"):
            connect(bad, read_only=ro)
    # and below the sniffing: a connection of escpro's refuses to load any extension
    con = connect(tmp_path / "plain.duckdb")
    with pytest.raises(duckdb.Error):
        con.execute(f"ATTACH '{bad}' AS s (TYPE sqlite)")
    con.close()
    assert not (home / ".duckdb").exists()


def test_foreign_duckdb_file_gets_no_escpro_tables(good, tmp_path):
    bad = make_bad("foreign", tmp_path, good)
    for extra in ([], ["--resume"]):
        res = CliRunner().invoke(cli, [*argv("build", bad, good, tmp_path), *extra])
        assert res.exit_code == 1 and "other tables: customers" in res.stderr
    con = duckdb.connect(str(bad), read_only=True)
    assert [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()] == ["customers"]
    con.close()


def test_newer_schema_is_never_resumed_or_read(good, tmp_path):
    bad = make_bad("newer", tmp_path, good)
    for cmd in ("resume", "extract", "query"):
        res = CliRunner().invoke(cli, argv(cmd, bad, good, tmp_path))
        assert res.exit_code == 1 and "another escpro version (schema 99" in res.stderr, res.stderr


def test_directory_or_pipe_as_database_is_one_line_and_never_hangs(good, tmp_path):
    os.mkfifo(tmp_path / "pipe.duckdb")
    (tmp_path / "dir.duckdb").mkdir()
    for bad, words in ((tmp_path / "pipe.duckdb", "not a regular file"),
                       (tmp_path / "dir.duckdb", "is a directory")):
        for cmd in ("query", "extract", "resume"):
            res = CliRunner().invoke(cli, argv(cmd, bad, good, tmp_path))
            assert res.exit_code in (1, 2) and words in res.stderr, (cmd, res.stderr, res.output)
