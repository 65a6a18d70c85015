"""Reading a build file back: the run record, tree rows and node rows (for resume, merge, tools)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

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
