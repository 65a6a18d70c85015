"""Opening the DuckDB file, retried while another process holds the lock.

DuckDB locks the whole file per process (STACK_NOTES.md): a read-write connection shuts out
every other process, even readers. So the build follows DuckDB's documented multi-process
pattern: its writer opens the file, commits a batch and closes it again, once per commit
interval (store/writer.py), and holds it only for the tens of milliseconds a commit takes; a
reader (any program: `escpro query`, the `duckdb` CLI, your scripts) that meets the lock retries
for a bounded time and gets in between two commits, and a commit that meets a reader's lock
keeps its batch in memory for the next interval. docs/build.md ("Queries while building")
has the measurements that chose this over a file held open between commits.

Every connection escpro opens goes through `connect`, so two rules hold everywhere: DuckDB never
installs or loads an extension (an SQLite file given as a build file would otherwise make it
download one: escpro reaches no network but its role endpoints), and a read-only connection --
where `escpro query` runs the user's SQL -- can touch no file but the database itself
(`enable_external_access = false`: no COPY TO, ATTACH, read_text, EXPORT DATABASE or INSTALL),
with its configuration locked so the SQL cannot switch that back on. Files are sniffed before
DuckDB sees them, so an empty, text or SQLite file is one clear line, not a DuckDB message.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from escpro.errors import EscproError
from escpro.store.schema import COLUMNS, DDL, SCHEMA_VERSION, check_row

# DuckDB's messages when another process holds the file ("block" in a checksum error is not one)
_LOCK_MARKERS = ("could not set lock", "conflicting lock", "being used by another")
_NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
READ_CONFIG = {**_NO_EXTENSIONS, "enable_external_access": False, "lock_configuration": True}
WRITE_CONFIG = dict(_NO_EXTENSIONS)  # merge ATTACHes its inputs; no user SQL runs here
ESCPRO_TABLES = ("runs", "trees", "nodes", "judgements", "llm_calls")
CORE_TABLES = ("runs", "trees", "nodes")
SQLITE_MAGIC = b"SQLite format 3\x00"
DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB file (after the header checksum)


class StoreError(EscproError):
    """The DuckDB file cannot be opened or is not an escpro build file."""


def is_lock_error(exc: BaseException) -> bool:
    msg = str(exc)
    return any(m.lower() in msg.lower() for m in _LOCK_MARKERS)


# DuckDB 2.x writes storage version 2 by default, which no DuckDB 1.x client can open. New files
# are written in v1.0.0 storage (readable by every DuckDB since 1.0) unless the user asks for
# another with ESCPRO_DUCKDB_STORAGE (a DuckDB storage version such as v1.2.0, or "latest" for the
# running DuckDB's own); the setting only applies when a file is created.
STORAGE_ENV = "ESCPRO_DUCKDB_STORAGE"
DEFAULT_STORAGE = "v1.0.0"


def storage_config() -> dict[str, str]:
    """The connect() config that picks the storage version of files created by it."""
    want = os.environ.get(STORAGE_ENV, DEFAULT_STORAGE).strip() or DEFAULT_STORAGE
    if want == "latest":
        return {}
    if not re.fullmatch(r"v\d+\.\d+\.\d+", want):
        raise StoreError(f"{STORAGE_ENV}={want!r}: use a DuckDB storage version like v1.0.0, or latest")
    return {"storage_compatibility_version": want}


def sniff(path: Path) -> None:
    """Refuse, in one line, a file DuckDB cannot be one of escpro's build files."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise StoreError(f"{path}: not a regular file (a pipe or device?), not a DuckDB build file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except IsADirectoryError:
        raise StoreError(f"{path}: is a directory, not a DuckDB build file") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror})") from None
    if not head:
        raise StoreError(f"{path}: empty file, not a DuckDB database (remove it or choose another file)")
    if head.startswith(SQLITE_MAGIC):
        raise StoreError(f"{path}: an SQLite database, not a DuckDB file written by escpro build")
    if head[8:12] != DUCKDB_MAGIC:
        raise StoreError(f"{path}: not a DuckDB database file (no DuckDB header)")


def _open_error(path: Path, exc: BaseException) -> StoreError:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "corrupt" in msg.lower() or "could not read enough bytes" in msg.lower():
        return StoreError(f"{path}: damaged or truncated DuckDB file ({msg})")
    return StoreError(f"{path}: cannot open as a DuckDB file ({msg})")


def connect(
    path: str | Path, *, read_only: bool = False, timeout_s: float = 10.0, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying with backoff while another process holds its lock (the build
    holds it only while it commits). Read-only connections are locked down (READ_CONFIG); no
    connection loads extensions. `threads` caps DuckDB's worker threads (default: one per core)."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        sniff(path)
    elif read_only:
        raise StoreError(f"{path}: no such database file")
    config = READ_CONFIG if read_only else WRITE_CONFIG
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            cfg = dict(config) if read_only else {**storage_config(), **config}
            if threads is not None:
                cfg["threads"] = threads
            return duckdb.connect(str(path), read_only=read_only, config=cfg)
        except (duckdb.IOException, duckdb.Error) as exc:
            if not is_lock_error(exc):
                raise _open_error(path, exc) from None
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{path}: still locked by another process after {timeout_s:.0f} s"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on any error (which is re-raised: it is what matters)."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:  # noqa: BLE001
            pass
        raise



# ---- schema (generated from the row types in store/schema.py) ----

_ARROW = {
    "TEXT": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
}


def arrow_table(table: str, rows: list[dict]) -> pa.Table:
    """Rows as an arrow table typed like the DuckDB table; every row is checked against its row
    type first (schema.check_row: an unknown or missing key is an error, not a NULL)."""
    cols = COLUMNS[table]
    for r in rows:
        check_row(table, r)
    arrays = {}
    for name, typ in cols:
        arrays[name] = pa.array([r.get(name) for r in rows], type=_ARROW[typ])
    return pa.table(arrays)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables, and add columns a newer escpro introduced to an older file."""
    con.execute(DDL)
    for table, cols in COLUMNS.items():
        have = {r[1] for r in con.execute(f"PRAGMA table_info('{table}')").fetchall()}
        for name, typ in cols:
            if name not in have:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {typ}")


def _tables(con: duckdb.DuckDBPyConnection, catalog: str | None) -> set[str]:
    where = "table_catalog = ?" if catalog else "table_catalog = current_database()"
    got = con.execute(
        f"SELECT table_name FROM information_schema.tables WHERE {where}", [catalog] if catalog else []
    ).fetchall()
    return {r[0] for r in got}


def check_escpro_file(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, catalog: str | None = None,
    for_writing: bool = False,
) -> None:
    """A build file of a schema this escpro knows; for writing, also nothing but escpro's tables
    (escpro never adds its tables to someone else's database). `catalog`: an ATTACHed file."""
    tables = _tables(con, catalog)
    if for_writing:
        foreign = sorted(tables - set(ESCPRO_TABLES))
        if foreign:
            raise StoreError(
                f"{path}: not an escpro build file (it holds other tables: "
                f"{', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}); choose another file"
            )
        if not tables:
            return  # a new (empty) DuckDB file: the build creates its tables
    missing = [t for t in CORE_TABLES if t not in tables]
    if missing:
        what = "no tables: an empty DuckDB database" if not tables else f"no table {missing[0]}"
        raise StoreError(f"{path}: not an escpro build file ({what})")
    runs = f"{catalog}.runs" if catalog else "runs"
    versions = [r[0] for r in con.execute(f"SELECT DISTINCT schema_version FROM {runs}").fetchall()]
    unknown = [v for v in versions if v is None or v > SCHEMA_VERSION or v < 1]
    if unknown:
        shown = "unknown" if any(v is None for v in unknown) else str(max(unknown))
        raise StoreError(
            f"{path}: written by another escpro version (schema {shown}; this escpro reads "
            f"<= {SCHEMA_VERSION}): use a matching escpro"
        )
