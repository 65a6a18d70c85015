"""Opening the DuckDB file, retried while another process holds the lock.

DuckDB locks the whole file per process (STACK_NOTES.md): a read-write connection shuts out
every other process, even readers. The build keeps its connection open between commits (opening
and closing the file cost ~40% of a commit) until a reader asks for the file: a read-only
`connect` that meets the lock leaves a request in `<db>.readers/` (one file per waiting process),
and the writer closes the file after its next commit while any request is there. Both sides
retry for a bounded time when they meet the other's lock.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from escpro.errors import EscproError
from escpro.store.schema import DDL, SCHEMA_VERSION

_LOCK_MARKERS = ("lock", "Conflicting lock", "being used by another")


class StoreError(EscproError):
    """The DuckDB file cannot be opened or is not an escpro build file."""


def is_lock_error(exc: BaseException) -> bool:
    msg = str(exc)
    return any(m.lower() in msg.lower() for m in _LOCK_MARKERS)


def readers_dir(path: str | Path) -> Path:
    return Path(f"{path}.readers")


def request_read(path: str | Path) -> Path | None:
    """Ask a build holding the file to let go of it (None when the request cannot be written,
    e.g. a read-only directory: the reader then just retries)."""
    d = readers_dir(path)
    marker = d / f"{os.getpid()}-{time.monotonic_ns()}"
    try:
        d.mkdir(exist_ok=True)
        marker.touch()
    except OSError:
        return None
    return marker


def withdraw_read(marker: Path | None) -> None:
    if marker is None:
        return
    try:
        marker.unlink()
        marker.parent.rmdir()  # fails while other readers wait: their requests stay
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def readers_waiting(path: str | Path) -> bool:
    """Whether a reader asked for the file; requests of processes that died are removed."""
    d = readers_dir(path)
    try:
        names = os.listdir(d)
    except OSError:
        return False
    waiting = False
    for name in names:
        try:
            pid = int(name.split("-", 1)[0])
        except ValueError:
            continue
        if _alive(pid):
            waiting = True
        else:
            withdraw_read(d / name)
    return waiting


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


def connect(
    path: str | Path, *, read_only: bool = False, timeout_s: float = 10.0
) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying with backoff while another process holds its lock (a reader
    also asks a running build to release it: readers_dir)."""
    path = Path(path)
    if read_only and not path.exists():
        raise StoreError(f"{path}: no such database file")
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    marker: Path | None = None
    try:
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only,
                                      config={} if read_only else storage_config())
            except (duckdb.IOException, duckdb.Error) as exc:
                if not is_lock_error(exc):
                    raise StoreError(f"{path}: cannot open as a DuckDB file ({exc})") from None
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{path}: still locked by another process after {timeout_s:.0f} s"
                    ) from None
                if read_only and marker is None:
                    marker = request_read(path)
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
    finally:
        withdraw_read(marker)


# ---- schema ----
_TYPE_RE = re.compile(r"^\s+(\w+)\s+([A-Z]+)", re.M)


def expected_columns() -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, DuckDB type)] parsed from the DDL (the single source of truth)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for block in DDL.split("CREATE TABLE IF NOT EXISTS ")[1:]:
        name = block.split("(", 1)[0].strip()
        body = block.split("(", 1)[1]
        out[name] = [(m.group(1), m.group(2)) for m in _TYPE_RE.finditer(body)]
    return out


COLUMNS = expected_columns()

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
    """Rows (dicts, missing keys = NULL) as an arrow table typed like the DuckDB table."""
    cols = COLUMNS[table]
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


def check_escpro_file(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    missing = {"runs", "trees", "nodes"} - tables
    if missing:
        raise StoreError(f"{path}: not an escpro build file (no table {sorted(missing)[0]})")
    versions = [r[0] for r in con.execute("SELECT DISTINCT schema_version FROM runs").fetchall()]
    newer = [v for v in versions if v is not None and v > SCHEMA_VERSION]
    if newer:
        raise StoreError(
            f"{path}: written by a newer escpro (schema {max(newer)} > {SCHEMA_VERSION})"
        )
