"""Batched, crash-safe writes of the build's rows.

Tree searches hand over Deltas (one per commit point); the writer merges them and, every
`interval_s` or when `max_rows` wait, writes everything in ONE transaction (arrow batches:
STACK_NOTES.md measures row-by-row inserts ~300x slower). Each commit opens the file, writes and
closes it (DuckDB's multi-process pattern, store/db.py), so any reader gets in between two
commits. Every row is checked against its table's row type first (store/schema.py). A delta is either fully
committed or not at all; node rows are upserts of a node's latest values, every other row is
keyed or append-only, so a batch never duplicates what an earlier one wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from escpro.store.db import (
    COLUMNS,
    StoreError,
    arrow_table,
    connect,
    ensure_schema,
    is_lock_error,
    transaction,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
WRITER_THREADS = 1  # DuckDB threads of the build writer's connection (see BatchWriter._open)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Batch:
    trees: dict[str, dict] = field(default_factory=dict)
    nodes: dict[str, dict] = field(default_factory=dict)
    judgements: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)

    def rows(self) -> int:
        return len(self.trees) + len(self.nodes) + len(self.judgements) + len(self.calls)

    def merge_newer(self, newer: Batch) -> None:
        """Append a later batch to this one (its tree and node rows replace ours)."""
        self.trees.update(newer.trees)
        self.nodes.update(newer.nodes)
        self.judgements.extend(newer.judgements)
        self.calls.extend(newer.calls)

    def add(self, delta) -> None:
        check_finite(delta)
        self.trees[delta.tree_row["tree_id"]] = dict(delta.tree_row)
        for n in delta.nodes:
            self.nodes[n["node_id"]] = n
        self.judgements.extend(delta.judgements)
        if delta.calls and not delta.tree_row.get("node_count"):
            # A tree without a single stored node (its gold initialisation failed): its calls
            # are kept, but they cannot point at nodes that were never written.
            self.calls.extend({**c, "node_id": None} for c in delta.calls)
        else:
            self.calls.extend(delta.calls)


def check_finite(delta) -> None:
    """NaN or infinity never reaches the store: the tree fails instead (its search catches this)."""
    for n in delta.nodes:
        for k in ("q", "prior"):
            v = n.get(k)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"node {n['node_id']}: {k} = {v} is not a finite number; not stored")
    for j in delta.judgements:
        v = j.get("reward")
        if v is not None and not math.isfinite(v):
            raise ValueError(f"judgement of {j.get('node_id')}: reward = {v} is not finite; not stored")


def write_batch(path: str | Path, batch: Batch, lock_timeout_s: float) -> None:
    """Open the file, write the batch in one transaction, close it."""
    con = connect(path, timeout_s=lock_timeout_s)
    try:
        write_rows(con, batch)
    finally:
        con.close()


def insert_rows(con: duckdb.DuckDBPyConnection, verb: str, table: str, rows: list[dict],
                where: str = "") -> None:
    """`verb` (INSERT, INSERT OR REPLACE) the rows into `table` as one arrow batch."""
    con.register("_batch", arrow_table(table, rows))
    cols = ", ".join(name for name, _ in COLUMNS[table])
    con.execute(f"{verb} INTO {table} ({cols}) SELECT {cols} FROM _batch {where}")
    con.unregister("_batch")


def write_rows(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """One transaction: upsert trees and nodes, insert judgements and calls."""
    with transaction(con):
        stamp = now_utc()
        trees = [{**t, "updated_at": stamp} for t in batch.trees.values()]
        for table, rows, verb in (
            ("trees", trees, "INSERT OR REPLACE"),
            ("nodes", list(batch.nodes.values()), "INSERT OR REPLACE"),
            ("judgements", batch.judgements, "INSERT"),
            ("llm_calls", batch.calls, "INSERT OR REPLACE"),
        ):
            if rows:
                insert_rows(con, verb, table, rows)


MAX_RUN_JSON = 4 << 20  # a config is a few KB, the prompt templates tens of KB


def run_json(key: str, value) -> str:
    """A run-record column as JSON: finite numbers only, bounded in size."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        raise StoreError(f"runs.{key}: holds a NaN or infinite number; not stored") from None
    if len(text) > MAX_RUN_JSON:
        raise StoreError(f"runs.{key}: {len(text)} characters (at most {MAX_RUN_JSON}); not stored")
    return text


@dataclass(frozen=True)
class RunRecord:
    """A build's first write: its runs row and the trees it registers (pending ones; a resumed
    tree's row is left as it is). Made by `run_record`, which encodes the JSON columns, so a
    value that cannot be stored stops the build before any call."""

    run_row: dict
    tree_rows: list[dict]


def run_record(run_row: dict, tree_rows: list[dict]) -> RunRecord:
    rr = dict(run_row)
    for k in ("config", "prompts", "roles", "role_change", "retried_trees"):
        if rr.get(k) is not None and not isinstance(rr[k], str):
            rr[k] = run_json(k, rr[k])
    return RunRecord(rr, list(tree_rows))


def record_run(con: duckdb.DuckDBPyConnection, rec: RunRecord) -> None:
    """Create the schema if needed, record the run and register its trees, in one transaction."""
    ensure_schema(con)
    with transaction(con):
        insert_rows(con, "INSERT", "runs", [rec.run_row])
        if rec.tree_rows:
            stamp = now_utc()
            insert_rows(con, "INSERT", "trees", [{**t, "updated_at": stamp} for t in rec.tree_rows],
                        where="WHERE tree_id NOT IN (SELECT tree_id FROM trees)")


class BatchWriter:
    """The build's single writer: collects deltas, commits them in batches from a worker thread
    (the event loop keeps feeding the backends meanwhile)."""

    def __init__(self, path: str | Path, interval_s: float = 2.0, max_rows: int = 20000,
                 lock_timeout_s: float = 120.0, record: RunRecord | None = None):
        self.path = Path(path)
        # Written by the worker thread before the first commit, while the first calls go out
        # (recording the run is ~0.05 s of a build's start-up that no call waits for).
        self._record = record
        self._on_record_failed: Callable[[], object] | None = None
        self.interval_s = interval_s
        self.max_rows = max_rows
        self.lock_timeout_s = lock_timeout_s
        self.pending = Batch()
        self.commits = 0
        self.rows_written = 0
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._lock = asyncio.Lock()
        self.error: BaseException | None = None
        self._locked_since: float | None = None
        self._con: duckdb.DuckDBPyConnection | None = None  # open only during a commit
        self.opens = 0  # times the file was opened (once per commit; the final one also counts)
        self._keep_open = False  # set by close(): the last commit's connection serves `then`

    async def put(self, delta) -> None:
        if self.error is not None:
            raise self.error
        self.pending.add(delta)
        if self.pending.rows() >= self.max_rows:
            self._wake.set()

    def start(self, on_record_failed: Callable[[], object] | None = None) -> None:
        """Start the worker. If the run record cannot be written, `on_record_failed` is called
        (the build cancels its search: nothing it does could be committed) and close() raises
        the error."""
        self._on_record_failed = on_record_failed
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        if self._record is not None:
            try:
                await asyncio.to_thread(self._record_run, self._record)
            except Exception as exc:  # noqa: BLE001 (kept and re-raised to the build)
                self.error = exc
                if self._on_record_failed is not None:
                    self._on_record_failed()
                return
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 (kept and re-raised to the build)
                log.debug("commit failed: %s", exc)  # re-raised to the build, reported once
                self.error = exc
                return

    def _record_run(self, rec: RunRecord) -> None:
        self._open(self.lock_timeout_s)
        try:
            record_run(self._con, rec)
        finally:
            self._release()

    def _release(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def _commit(self, batch: Batch, wait_s: float) -> None:
        """In the worker thread: open the file, write, let go of it."""
        self._open(wait_s)
        try:
            write_rows(self._con, batch)
        except BaseException:
            self._release()
            raise
        if not self._keep_open:
            self._release()

    async def flush(self, final: bool = False) -> None:
        """Commit what waits. While a reader holds the file, the batch stays in memory and the
        next interval tries again; only lock_timeout_s without any successful commit is fatal."""
        async with self._lock:
            if not self.pending.rows():
                return
            batch, self.pending = self.pending, Batch()
            t0 = time.monotonic()
            wait = self.lock_timeout_s if final else min(self.lock_timeout_s, self.interval_s)
            try:
                await asyncio.to_thread(self._commit, batch, wait)
            except StoreError as exc:
                if not is_lock_error(exc) and "still locked" not in str(exc):
                    raise
                batch.merge_newer(self.pending)  # keep order: newer node values win
                self.pending = batch
                self._locked_since = self._locked_since or t0
                waited = time.monotonic() - self._locked_since
                if final or waited >= self.lock_timeout_s:
                    raise StoreError(
                        f"{self.path}: another process kept the file locked for {waited:.0f} s "
                        f"(build.lock_timeout_s = {self.lock_timeout_s:g}); stopping. Everything "
                        "committed before is safe: continue with --resume"
                    ) from None
                log.info("file locked by a reader; %d rows wait for the next commit", batch.rows())
                return
            self._locked_since = None
            self.commits += 1
            self.rows_written += batch.rows()
            log.debug("commit %d: %d rows in %.3fs", self.commits, batch.rows(),
                      time.monotonic() - t0)

    async def close(self, then: Callable[[duckdb.DuckDBPyConnection], T] | None = None) -> T | None:
        """Commit what waits; `then(connection)` runs on the file afterwards (the build's
        summary counts, while the build still holds its lock)."""
        # The summary counts run on the last commit's connection: one open (and one checkpoint
        # at close) fewer at the end of every build. Set before the loop wakes: its last flush
        # is usually the one that commits the final rows.
        self._keep_open = then is not None
        self._closing = True
        self._wake.set()
        try:
            if self._task is not None:
                await self._task
            if self.error is not None:
                raise self.error
            await self.flush(final=True)
            if then is not None:
                return await asyncio.to_thread(self._on_file, then)
            return None
        finally:
            await asyncio.to_thread(self._release)

    def _on_file(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        if self._con is None:
            self._open(self.lock_timeout_s)
        return fn(self._con)

    def _open(self, wait_s: float) -> None:
        if self._con is not None:  # kept open for the summary (close): commit on it
            return
        # One DuckDB thread: a commit is a few thousand rows, which a second thread does not
        # speed up but costs CPU to coordinate (~0.01 ms per build call, docs/performance.md).
        self._con = connect(self.path, timeout_s=wait_s, threads=WRITER_THREADS)
        self.opens += 1  # closing it after the commit folds the write-ahead log into the file
