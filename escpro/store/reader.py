"""THE reader of build files: every query escpro runs on a build file lives here.

The run records, tree and node rows (resume, extract, stats, the tree viewer and the UI), the
call costs and sources. `open_read_only` is the one hardened way to open a file for reading; the
build itself reads through it (resume.py) and `escpro query` and the UI open with it. Reads for
extraction take only documented columns (escpro/store/schema.py), by name, so columns added later
do not matter and a column missing from an older file reads as NULL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from escpro.errors import DataError
from escpro.store.db import check_escpro_file, connect


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def open_read_only(path: str | Path, timeout_s: float = 10.0) -> duckdb.DuckDBPyConnection:
    """THE way escpro opens a build file for reading (query, extract, stats, tree, the UI): a
    read-only, locked-down connection (store/db.py: READ_CONFIG) to a file checked to be an
    escpro build file of a known schema; anything else is a one-line StoreError."""
    con = connect(path, read_only=True, timeout_s=timeout_s)
    try:
        check_escpro_file(con, path)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def open_db(path: str | Path, lock_timeout_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection (one snapshot for the whole read) with one-line errors."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: database file not found")
    con = open_read_only(p, timeout_s=lock_timeout_s)
    try:
        yield con
    finally:
        con.close()


def load_runs(con) -> list[dict]:
    out = rows(con, "SELECT * FROM runs ORDER BY started_at")
    for r in out:
        for k in ("config", "prompts", "roles", "role_change", "retried_trees"):
            if isinstance(r.get(k), str):
                r[k] = json.loads(r[k])
    return out


def load_trees(con, tree_ids: list[str] | None = None) -> dict[str, dict]:
    if tree_ids is None:
        got = rows(con, "SELECT * FROM trees")
    else:
        got = rows(con, "SELECT * FROM trees WHERE list_contains(?, tree_id)", [tree_ids])
    return {r["tree_id"]: r for r in got}


def load_nodes(con, tree_ids: list[str]) -> dict[str, list[dict]]:
    """tree_id -> its node rows, parents before children."""
    out: dict[str, list[dict]] = {t: [] for t in tree_ids}
    if not tree_ids:
        return out
    for r in rows(
        con,
        "SELECT * FROM nodes WHERE list_contains(?, tree_id) ORDER BY tree_id, depth, node_id",
        [tree_ids],
    ):
        out[r["tree_id"]].append(r)
    return out


NODE_COLUMNS = (
    "node_id", "tree_id", "parent_id", "depth", "kind", "strategy", "prior", "q", "n",
    "supporter_text", "seeker_text", "is_end", "is_gold", "child_index",
)
TREE_COLUMNS = (
    "tree_id", "run_id", "status", "scene", "situation", "iterations", "end_count", "seed",
)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    taxonomy: str | None
    seeds_sha256: str | None
    started_at: str | None


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()
    return {r[0] for r in rows}


def _select(con: duckdb.DuckDBPyConnection, table: str, cols: tuple[str, ...]) -> str:
    have = _columns(con, table)
    return ", ".join(c if c in have else f"NULL AS {c}" for c in cols)


def read_runs(con: duckdb.DuckDBPyConnection) -> list[RunInfo]:
    sel = _select(con, "runs", ("run_id", "taxonomy", "seeds_sha256", "started_at"))
    rows = con.execute(f"SELECT {sel} FROM runs ORDER BY run_id").fetchall()
    return [RunInfo(r[0], r[1], r[2], str(r[3]) if r[3] is not None else None) for r in rows]


def tree_ids(con: duckdb.DuckDBPyConnection, statuses: tuple[str, ...] | None = None) -> list[str]:
    if statuses:
        marks = ", ".join("?" for _ in statuses)
        rows = con.execute(
            f"SELECT tree_id FROM trees WHERE status IN ({marks}) ORDER BY tree_id", list(statuses)
        ).fetchall()
    else:
        rows = con.execute("SELECT tree_id FROM trees ORDER BY tree_id").fetchall()
    return [r[0] for r in rows]


def _seed(raw: object, tree_id: str) -> dict | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        return raw
    try:
        val = json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        raise DataError(f"trees.seed of {tree_id}: not valid JSON") from None
    return val if isinstance(val, dict) else None


def tree_rows(con: duckdb.DuckDBPyConnection, ids: list[str] | None = None
              ) -> Iterator[tuple[dict, list[dict]]]:
    """(tree row, its node rows in node_id order) for the documented columns, in tree_id order;
    ids=None reads every tree. A column an older file lacks reads as None."""
    tsel = _select(con, "trees", TREE_COLUMNS)
    nsel = _select(con, "nodes", NODE_COLUMNS)
    if ids is None:
        ids = tree_ids(con)
    for start in range(0, len(ids), 64):  # bounded memory on big files, few queries on small
        chunk = ids[start : start + 64]
        marks = ", ".join("?" for _ in chunk)
        trows = con.execute(f"SELECT {tsel} FROM trees WHERE tree_id IN ({marks})", chunk).fetchall()
        nrows = con.execute(
            f"SELECT {nsel} FROM nodes WHERE tree_id IN ({marks}) ORDER BY node_id", chunk
        ).fetchall()
        by_tree: dict[str, list[dict]] = {}
        for row in nrows:
            by_tree.setdefault(row[1], []).append(dict(zip(NODE_COLUMNS, row, strict=True)))
        info = {r[0]: dict(zip(TREE_COLUMNS, r, strict=True)) for r in trows}
        for tid in chunk:
            t = info.get(tid)
            if t is not None:
                t["seed"] = _seed(t["seed"], tid)
                yield t, by_tree.get(tid, [])


def missing_tree(con: duckdb.DuckDBPyConnection, tree_id: str) -> DataError:
    """The error for a tree id the file does not hold (naming a few it does)."""
    known = tree_ids(con)
    hint = f" (known: {', '.join(known[:5])}{' ...' if len(known) > 5 else ''})" if known else " (no trees stored)"
    return DataError(f"no tree '{tree_id}' in the database{hint}")


def call_costs(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Role-call costs per role from llm_calls (empty when the table is absent or empty)."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "llm_calls" not in tables:
        return []
    have = _columns(con, "llm_calls")
    cached = "count(*) FILTER (WHERE cached)" if "cached" in have else "0"
    rows = con.execute(
        f"""
        SELECT coalesce(role, '?') AS role,
               count(*) AS calls,
               count(*) FILTER (WHERE status = 'ok') AS ok,
               count(*) FILTER (WHERE status IS DISTINCT FROM 'ok') AS failed,
               count(*) FILTER (WHERE status = 'invalid') AS invalid,
               count(*) FILTER (WHERE status = 'error') AS error,
               count(*) FILTER (WHERE status = 'timeout') AS timeout,
               {cached} AS cached,
               coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
               coalesce(sum(completion_tokens), 0) AS completion_tokens,
               avg(latency_ms) AS latency_mean_ms,
               quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
               quantile_cont(latency_ms, 0.95) AS latency_p95_ms,
               coalesce(sum(latency_ms), 0) / 1000.0 AS latency_total_s
        FROM llm_calls GROUP BY 1 ORDER BY 1
        """
    )
    cols = [d[0] for d in rows.description]
    return [dict(zip(cols, r, strict=True)) for r in rows.fetchall()]


def call_sources(con: duckdb.DuckDBPyConnection, ids: list[str]) -> list[dict]:
    """Which backends and models answered the role calls of these trees (from llm_calls):
    [{backend, model, roles, calls, trees}], the simulator included -- what produced the data."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
    ).fetchall()}
    if "llm_calls" not in tables or not ids:
        return []
    rows = con.execute(
        """
        SELECT coalesce(backend, '?'), coalesce(model, '?'), list(DISTINCT role ORDER BY role),
               count(*), count(DISTINCT tree_id)
        FROM llm_calls WHERE list_contains(?, tree_id) AND NOT coalesce(cached, false)
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        [ids],
    ).fetchall()
    return [{"backend": b, "model": m, "roles": list(r), "calls": n, "trees": t}
            for b, m, r, n, t in rows]


def read_run_roles(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Each run's recorded roles (runs.roles; absent in files of older escpro versions)."""
    if "roles" not in _columns(con, "runs"):
        return []
    out = []
    for run_id, roles in con.execute("SELECT run_id, roles FROM runs ORDER BY started_at").fetchall():
        if roles is None:
            continue
        data = json.loads(roles) if isinstance(roles, str) else roles
        out.append({"run_id": run_id, "roles": {
            r: {k: b.get(k) for k in ("backend", "model", "base_url")} for r, b in data.items()}})
    return out


def build_counts(con, tids: list[str]) -> dict:
    """What the file holds for these trees (a build counts them on its writer's connection at
    the end, without opening the file once more)."""
    status = dict(con.execute(
        "SELECT status, count(*) FROM trees WHERE list_contains(?, tree_id) GROUP BY status",
        [tids]).fetchall())
    n_nodes, n_end = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_end) FROM nodes "
        "WHERE list_contains(?, tree_id)", [tids]).fetchone()
    calls = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status <> 'ok') FROM llm_calls "
        "WHERE list_contains(?, tree_id)", [tids]).fetchone()
    return {"tree_status": status, "nodes": n_nodes, "end_nodes": n_end,
            "llm_calls_in_db": calls[0], "failed_calls_in_db": calls[1]}
