"""The writer: batched upserts, typed arrow rows, ids, and waiting out a reader's lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import duckdb
import pytest

from escpro.mcts.state import Delta
from escpro.store import ids
from escpro.store.db import StoreError, connect, ensure_schema
from escpro.store.schema import COLUMNS, RowError
from escpro.store.writer import Batch, BatchWriter, run_record, write_batch


def full(table, **values):
    """A complete row of `table` (every column named; the ones not given are NULL)."""
    return {c: None for c, _ in COLUMNS[table]} | values


def tree(**values):
    return full("trees", **values)


def test_ids_round_trip():
    t = ids.tree_id("0123456789abcdef" * 4, 17)
    assert t == "0123456789ab-17"
    assert ids.node_id(t, ()) == "0123456789ab-17/r"
    assert ids.node_id(t, (0, 3, 12)) == "0123456789ab-17/r.0.3.12"
    assert ids.parse_node_path("0123456789ab-17/r.0.3.12") == (t, (0, 3, 12))
    assert ids.parse_node_path(f"{t}/r") == (t, ())
    assert ids.call_id(t, 4, 2) == "0123456789ab-17:4:2"


def node(nid, q, n, kind="expanded"):
    return full("nodes", node_id=nid, tree_id="t", kind=kind, q=q, n=n, depth=nid.count("."),
                is_end=False, is_gold=False)


def test_batches_upsert_nodes_and_keep_the_latest_values(tmp_path):
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_schema(con)
    con.close()
    b = Batch()
    b.add(Delta(tree(tree_id="t", status="running", iterations=1),
                nodes=[node("t/r", 1.0, 101), node("t/r.0", 0.5, 1)],
                calls=[full("llm_calls", call_id="t:1:0", role="seeker", status="ok", cached=False)]))
    b.add(Delta(tree(tree_id="t", status="running", iterations=2),
                nodes=[node("t/r", 0.99, 102)],
                judgements=[full("judgements", node_id="t/r.0", iteration=2, reward=-0.5, tree_id="t",
                                  turn_offset=0, empathy=2, information=2, humanoid=3,
                                  strategy_score=2)]))
    assert b.rows() == 1 + 2 + 1 + 1
    write_batch(db, b, 5)
    b2 = Batch()
    b2.add(Delta(tree(tree_id="t", status="done", iterations=3), nodes=[node("t/r", 0.9, 103)]))
    write_batch(db, b2, 5)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT node_id, q, n FROM nodes ORDER BY node_id").fetchall() == [
        ("t/r", 0.9, 103), ("t/r.0", 0.5, 1)]
    assert con.execute("SELECT status, iterations FROM trees").fetchall() == [("done", 3)]
    assert con.execute("SELECT typeof(n), typeof(q), typeof(is_end) FROM nodes LIMIT 1").fetchone() == (
        "INTEGER", "DOUBLE", "BOOLEAN")
    assert con.execute("SELECT count(*) FROM judgements").fetchone() == (1,)
    con.close()


HOLD = """
import sys, time, duckdb
c = duckdb.connect(sys.argv[1], read_only=True)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold_lock(db, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _file_a_reader_holds(tmp_path, seconds: float = 1.5):
    """An empty build file with escpro's tables, held by a reader process for `seconds`."""
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_schema(con)
    con.close()
    return db, _hold_lock(db, seconds)


@pytest.mark.parametrize("lock_timeout,ok", [(20.0, True), (0.4, False)])
def test_writer_waits_for_a_reader_then_commits_or_gives_up(tmp_path, lock_timeout, ok):
    db, reader = _file_a_reader_holds(tmp_path)

    async def main():
        w = BatchWriter(db, interval_s=0.1, lock_timeout_s=lock_timeout)
        w.start()
        await w.put(Delta(tree(tree_id="t", status="running", iterations=1),
                          nodes=[node("t/r", 1.0, 100, "root")]))
        await asyncio.sleep(0.5)  # a few refused commits while the reader holds the file
        await w.put(Delta(tree(tree_id="t", status="done", iterations=2),
                          nodes=[node("t/r", 0.5, 101, "root")]))
        await w.close()
        return w

    t0 = time.monotonic()
    try:
        if ok:
            w = asyncio.run(main())
            assert w.commits >= 1 and time.monotonic() - t0 >= 1.0
            con = duckdb.connect(str(db), read_only=True)
            assert con.execute("SELECT q, n FROM nodes").fetchall() == [(0.5, 101)]
            assert con.execute("SELECT status FROM trees").fetchall() == [("done",)]
            con.close()
        else:
            with pytest.raises(StoreError, match="kept the file locked .* continue with --resume"):
                asyncio.run(main())
    finally:
        reader.wait(timeout=30)


@pytest.mark.parametrize("lock_timeout,ok", [(20.0, True), (0.4, False)])
def test_the_run_record_waits_for_a_reader_while_the_build_goes_on(tmp_path, lock_timeout, ok):
    """The build's first write (its runs row and pending trees) happens in the writer's thread
    while the first calls go out; a reader holding the file delays it (the deltas wait behind
    it, in order) or, past lock_timeout_s, stops the build with one error."""
    db, reader = _file_a_reader_holds(tmp_path)
    rec = run_record(full("runs", run_id="r1", schema_version=1, config={"a": 1}),
                     [tree(tree_id="t", run_id="r1", status="pending", iterations=0)])

    async def main():
        w = BatchWriter(db, interval_s=0.1, lock_timeout_s=lock_timeout, record=rec)
        w.start()
        await asyncio.sleep(0.6)  # the search goes on meanwhile
        await w.put(Delta(tree(tree_id="t", run_id="r1", status="done", iterations=1),
                          nodes=[node("t/r", 0.5, 101, "root")]))
        await w.close()

    try:
        if ok:
            asyncio.run(main())
            con = duckdb.connect(str(db), read_only=True)
            assert con.execute("SELECT run_id, config FROM runs").fetchall() == [("r1", '{"a": 1}')]
            assert con.execute("SELECT status, iterations FROM trees").fetchall() == [("done", 1)]
            con.close()
        else:
            with pytest.raises(StoreError, match="still locked by another process"):
                asyncio.run(main())
    finally:
        reader.wait(timeout=30)


READ = """
import sys, time
from escpro.store.db import connect
t0 = time.monotonic()
c = connect(sys.argv[1], read_only=True, timeout_s=30)
print(c.execute("SELECT count(*) FROM nodes").fetchone()[0], round(time.monotonic() - t0, 2), flush=True)
c.close()
"""


PLAIN = "import duckdb, sys; print(duckdb.connect(sys.argv[1], read_only=True).execute('SELECT count(*) FROM nodes').fetchone()[0])"


def test_any_reader_gets_in_between_commits_without_asking(tmp_path):
    """DuckDB's multi-process pattern: each commit opens, writes and closes the file, so a plain
    duckdb client (no escpro, no request) reads between two commits, and escpro's reader, which
    retries while a commit holds the lock, never waits longer than about one commit."""
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_schema(con)
    con.close()

    async def main():
        w = BatchWriter(db, interval_s=60, lock_timeout_s=20)  # commits only when flushed here
        w.start()

        async def commit(i):
            await w.put(Delta(tree(tree_id="t", status="running", iterations=i),
                              nodes=[node(f"t/r.{i}", 0.5, 1)]))
            await w.flush()

        for i in range(3):
            await commit(i)
        assert w.commits == 3 and w.opens == 3  # one open per commit, nothing held in between
        plain = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PLAIN, str(db), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(plain.communicate(), 30)
        assert plain.returncode == 0, err.decode()
        assert int(out) == 3
        reader = await asyncio.create_subprocess_exec(
            sys.executable, "-c", READ, str(db), stdout=asyncio.subprocess.PIPE)
        i = 3
        while reader.returncode is None and i < 200:  # commits go on while the reader reads
            await commit(i)
            await asyncio.sleep(0.05)
            i += 1
        out, _ = await asyncio.wait_for(reader.communicate(), 30)
        await commit(i)
        await w.close()
        return w, i + 1, out.decode().split()

    w, n, (count, waited) = asyncio.run(main())
    assert int(count) >= 3 and float(waited) < 5  # it saw the commits made before it got in
    assert w.commits == n
    assert not (tmp_path / "w.duckdb.readers").exists()  # no hand-off files any more
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM nodes").fetchone() == (n,)
    con.close()


def test_a_row_with_an_unknown_or_missing_key_is_refused_not_stored_as_null(tmp_path):
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ensure_schema(con)
    con.close()
    for bad, msg in (({**node("t/r", 1.0, 1), "qq": 0.5}, "unknown key qq"),
                     ({k: v for k, v in node("t/r", 1.0, 1).items() if k != "prior"}, "missing prior")):
        b = Batch()
        b.add(Delta(tree(tree_id="t", status="running", iterations=1), nodes=[bad]))
        with pytest.raises(RowError, match=msg):
            write_batch(db, b, 5)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM nodes").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM trees").fetchone() == (0,)  # nothing of the batch
    con.close()
    # the writer stamps updated_at itself: a tree row may leave it out
    b = Batch()
    b.add(Delta({k: v for k, v in tree(tree_id="t", status="done").items() if k != "updated_at"}))
    write_batch(db, b, 5)
