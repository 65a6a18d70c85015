"""DuckDB schema: the public SQL interface (names are stable; columns may be added).

The row types below are the single source of truth: the DDL, the column lists the writer and
merge use, and the arrow types of a commit are all generated from them, and every row the search
hands to the store is checked against them (`check_row`: an unknown key or a missing one is an
error, never a silent NULL). The README's schema tables are checked against them by a test.

Ids are deterministic TEXT so that resume, shards and merge never collide:
tree_id = "<seeds sha256[:12]>-<seed index>", node_id = "<tree_id>/<child index path>" with the
root as "<tree_id>/r" and its children "<tree_id>/r.0", "<tree_id>/r.0.3", ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1

# What the stored rows mean, as opposed to how they are laid out (SCHEMA_VERSION). Bumped when a
# change to how trees are built makes old trees differ from new ones, so a resumed build never
# continues trees grown under other rules. 1: escpro before the version was recorded (NULL).
# 2: issue 14's rule -- the Reward judge sees the dialogue up to the judged Supporter turn, and
# only the Seeker sees the seed's situation.
DATA_RULES_VERSION = 2

NODE_KINDS = ("root", "unexpanded", "expanded", "end")
CALL_STATUSES = ("ok", "invalid", "error", "timeout")
TREE_STATUSES = ("pending", "running", "done", "failed")


def col(sql: str, *, key: bool = False, not_null: bool = False, stamped: bool = False) -> Any:
    """A column: its DuckDB type, and whether it is the key or NOT NULL. `stamped` columns are
    filled by the writer itself (a row from the search may leave them out)."""
    meta = {"sql": sql, "key": key, "not_null": not_null or key}
    return field(default=None, metadata=meta) if stamped else field(metadata=meta)


# Columns are listed in the order of the DuckDB tables (new columns go last: ALTER TABLE ADD).
@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """One `escpro build` invocation (a resume adds a row)."""

    run_id: str = col("TEXT", key=True)
    schema_version: int = col("INTEGER", not_null=True)
    config: str | None = col("JSON")
    code_version: str | None = col("TEXT")
    taxonomy: str | None = col("TEXT")
    seeds_sha256: str | None = col("TEXT")
    started_at: datetime | None = col("TIMESTAMP")
    seeds_path: str | None = col("TEXT")
    prompts: str | None = col("JSON")
    shard: str | None = col("TEXT")
    random_seed: int | None = col("BIGINT")
    command: str | None = col("TEXT")
    data_rules_version: int | None = col("INTEGER")
    roles: str | None = col("JSON")
    role_change: str | None = col("JSON")
    retried_trees: str | None = col("JSON")


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeRow:
    """One seed's tree."""

    tree_id: str = col("TEXT", key=True)
    run_id: str | None = col("TEXT")
    seed_id: str | None = col("TEXT")
    seed_index: int | None = col("INTEGER")
    scene: str | None = col("TEXT")
    situation: str | None = col("TEXT")
    status: str | None = col("TEXT")
    iterations: int | None = col("INTEGER")
    end_count: int | None = col("INTEGER")
    error: str | None = col("TEXT")
    seed: str | None = col("JSON")
    updated_at: datetime | None = col("TIMESTAMP", stamped=True)
    stop_reason: str | None = col("TEXT")
    node_count: int | None = col("INTEGER")
    consecutive_failures: int | None = col("INTEGER")
    failed_iterations: int | None = col("INTEGER")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRow:
    """A tree node with Q and N as the search left them."""

    node_id: str = col("TEXT", key=True)
    tree_id: str = col("TEXT", not_null=True)
    parent_id: str | None = col("TEXT")
    depth: int | None = col("INTEGER")
    kind: str | None = col("TEXT")
    strategy: str | None = col("TEXT")
    prior: float | None = col("DOUBLE")
    q: float | None = col("DOUBLE")
    n: int | None = col("INTEGER")
    supporter_text: str | None = col("TEXT")
    seeker_text: str | None = col("TEXT")
    is_end: bool | None = col("BOOLEAN")
    is_gold: bool | None = col("BOOLEAN")
    created_iter: int | None = col("INTEGER")
    child_index: int | None = col("INTEGER")
    strategy_score: int | None = col("INTEGER")


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgementRow:
    """A Reward judgement used in a backpropagation."""

    node_id: str = col("TEXT", not_null=True)
    iteration: int | None = col("INTEGER")
    empathy: int | None = col("INTEGER")
    information: int | None = col("INTEGER")
    humanoid: int | None = col("INTEGER")
    strategy_score: int | None = col("INTEGER")
    reward: float | None = col("DOUBLE")
    tree_id: str | None = col("TEXT")
    turn_offset: int | None = col("INTEGER")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRow:
    """A role call (after the RoleSet's retries)."""

    call_id: str = col("TEXT", key=True)
    run_id: str | None = col("TEXT")
    tree_id: str | None = col("TEXT")
    node_id: str | None = col("TEXT")
    iteration: int | None = col("INTEGER")
    role: str | None = col("TEXT")
    backend: str | None = col("TEXT")
    model: str | None = col("TEXT")
    prompt_hash: str | None = col("TEXT")
    prompt_tokens: int | None = col("INTEGER")
    completion_tokens: int | None = col("INTEGER")
    latency_ms: float | None = col("DOUBLE")
    status: str | None = col("TEXT")
    error: str | None = col("TEXT")
    response: str | None = col("TEXT")
    attempts: int | None = col("INTEGER")
    cached: bool | None = col("BOOLEAN")
    truncated_turns: int | None = col("INTEGER")


ROW_TYPES: dict[str, type] = {
    "runs": RunRow, "trees": TreeRow, "nodes": NodeRow, "judgements": JudgementRow,
    "llm_calls": CallRow,
}

# table -> [(column, DuckDB type)], in table order
COLUMNS: dict[str, list[tuple[str, str]]] = {
    table: [(f.name, f.metadata["sql"]) for f in fields(cls)] for table, cls in ROW_TYPES.items()
}
_ALL = {t: frozenset(c for c, _ in cols) for t, cols in COLUMNS.items()}
_REQUIRED = {t: frozenset(f.name for f in fields(cls) if f.default is MISSING)
             for t, cls in ROW_TYPES.items()}


def _ddl(table: str, cls: type) -> str:
    cols = []
    for f in fields(cls):
        m = f.metadata
        extra = " PRIMARY KEY" if m["key"] else (" NOT NULL" if m["not_null"] else "")
        cols.append(f"    {f.name} {m['sql']}{extra}")
    return f"CREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(cols) + "\n);"


DDL = "\n".join(_ddl(t, cls) for t, cls in ROW_TYPES.items()) + "\n"


class RowError(ValueError):
    """A row whose keys are not its table's columns: a bug in the code that made it."""


def check_row(table: str, row: Mapping[str, Any]) -> None:
    """Refuse a row with a key its table does not have, or without one of its columns (only the
    writer-stamped ones may be left out). Cheap enough for every row of a commit (two set
    comparisons); the message is built only on failure."""
    keys = row.keys()
    if keys <= _ALL[table] and _REQUIRED[table] <= keys:
        return
    unknown = sorted(set(keys) - _ALL[table])
    missing = sorted(_REQUIRED[table] - set(keys))
    what = "; ".join(x for x in (
        f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}" if unknown else "",
        f"missing {', '.join(missing)}" if missing else "") if x)
    raise RowError(f"{table} row: {what} (columns: escpro/store/schema.py {ROW_TYPES[table].__name__})")
