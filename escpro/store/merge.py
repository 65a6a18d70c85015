"""Merge build files (shards) into one. Ids are deterministic and shards partition the seeds, so
rows never collide; a tree present in two inputs is a user mistake (the same seeds built twice)
and is refused unless the caller asks to keep the first copy."""

from __future__ import annotations

from pathlib import Path

from escpro.errors import EscproError
from escpro.store.db import COLUMNS, check_escpro_file, connect, ensure_schema


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
        if Path(p).resolve() == out.resolve():
            raise MergeError(f"{p}: an input cannot also be the output")
    con = connect(out)
    counts = {t: 0 for t in COLUMNS}
    skipped = 0
    try:
        ensure_schema(con)
        for i, p in enumerate(inputs):
            alias = f"src{i}"
            con.execute(f"ATTACH '{str(p).replace(chr(39), chr(39) * 2)}' AS {alias} (READ_ONLY)")
            try:
                check_escpro_file(_Scoped(con, alias), p)
                dup = con.execute(
                    f"SELECT count(*), min(s.tree_id) FROM {alias}.trees s "
                    "JOIN main.trees m USING (tree_id)").fetchone()
                if dup[0] and not skip_duplicates:
                    raise MergeError(
                        f"{p}: {dup[0]} tree(s) already merged from another input (e.g. {dup[1]}); "
                        "were the same seeds built twice? Use --skip-duplicates to keep the first"
                    )
                skipped += dup[0]
                con.execute("BEGIN")
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
                con.execute("COMMIT")
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except Exception:  # noqa: BLE001
                    pass
                raise
            finally:
                con.execute(f"DETACH {alias}")
    finally:
        con.close()
    return {"out": str(out), "inputs": [str(p) for p in inputs], "rows": counts,
            "duplicate_trees_skipped": skipped}


class _Scoped:
    """Runs check_escpro_file's queries against an attached database."""

    def __init__(self, con, alias: str):
        self.con, self.alias = con, alias

    def execute(self, sql: str, params=None):
        sql = sql.replace("FROM information_schema.tables",
                          f"FROM information_schema.tables WHERE table_catalog = '{self.alias}'")
        sql = sql.replace("FROM runs", f"FROM {self.alias}.runs")
        return self.con.execute(sql, params or [])
