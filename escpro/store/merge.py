"""Merge build files (shards) into one. Ids are deterministic and shards partition the seeds, so
rows never collide; a tree present in two inputs is a user mistake (the same seeds built twice)
and is refused unless the caller asks to keep the first copy."""

from __future__ import annotations

from pathlib import Path

import duckdb

from escpro.errors import EscproError
from escpro.store.db import (
    COLUMNS,
    StoreError,
    check_escpro_file,
    connect,
    ensure_schema,
    sniff,
    transaction,
)
from escpro.store.lock import BuildLock


class MergeError(EscproError):
    pass


def _cols(con, schema: str, table: str) -> list[str]:
    got = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
        "AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
    have = {r[0] for r in got}
    return [c for c, _ in COLUMNS[table] if c in have]


def merge_files(out: Path, inputs: list[Path], skip_duplicates: bool = False) -> dict:
    """Copy every input's rows into `out` (created if missing); returns row counts per table."""
    out = Path(out)
    for p in inputs:
        if not Path(p).exists():
            raise MergeError(f"{p}: no such file")
        if _same_file(Path(p), out):
            raise MergeError(f"{p}: an input cannot also be the output")
        sniff(Path(p))
    lock = BuildLock(out)  # no build (and no other merge) writes OUT meanwhile
    lock.acquire()
    try:
        return _merge(out, inputs, skip_duplicates)
    finally:
        lock.release()


def _merge(out: Path, inputs: list[Path], skip_duplicates: bool) -> dict:
    con = connect(out)
    counts = {t: 0 for t in COLUMNS}
    skipped = 0
    try:
        check_escpro_file(con, out, for_writing=True)
        ensure_schema(con)
        for i, p in enumerate(inputs):
            alias = f"src{i}"
            try:
                con.execute(f"ATTACH '{str(p).replace(chr(39), chr(39) * 2)}' AS {alias} (READ_ONLY)")
            except duckdb.Error as exc:
                raise StoreError(f"{p}: cannot open as a DuckDB file ({str(exc).splitlines()[0]})") from None
            try:
                check_escpro_file(con, p, catalog=alias)
                dup = con.execute(
                    f"SELECT count(*), min(s.tree_id) FROM {alias}.trees s "
                    "JOIN main.trees m USING (tree_id)").fetchone()
                if dup[0] and not skip_duplicates:
                    raise MergeError(
                        f"{p}: {dup[0]} tree(s) already merged from another input (e.g. {dup[1]}); "
                        "were the same seeds built twice? Use --skip-duplicates to keep the first"
                    )
                skipped += dup[0]
                with transaction(con):
                    new_trees = (f"(SELECT tree_id FROM {alias}.trees WHERE tree_id NOT IN "
                                 "(SELECT tree_id FROM main.trees))")
                    con.execute(f"CREATE TEMP TABLE _new AS {new_trees}")
                    for table in ("runs", "trees", "nodes", "judgements", "llm_calls"):
                        cols = ", ".join(_cols(con, alias, table))
                        if table == "runs":
                            where = "WHERE run_id NOT IN (SELECT run_id FROM main.runs)"
                        else:
                            where = "WHERE tree_id IN (SELECT tree_id FROM _new)"
                        n = con.execute(
                            f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM {alias}.{table} {where}"
                        ).fetchone()[0]
                        counts[table] += n
                    con.execute("DROP TABLE _new")
            finally:
                con.execute(f"DETACH {alias}")
    finally:
        con.close()
    return {"out": str(out), "inputs": [str(p) for p in inputs], "rows": counts,
            "duplicate_trees_skipped": skipped}


def _same_file(a: Path, b: Path) -> bool:
    """The same file, also through a symlink or a hard link."""
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False
