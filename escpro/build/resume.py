"""What a build finds in its file before it starts: a new file, or a build to continue.

A file is continued only when it is escpro's own (no foreign tables, a known schema), was built
from the same seeds file with the same search settings, under the current data rules
(DATA_RULES_VERSION), and -- checked by build/roles.py -- with the same roles. `--retry-failed`
also puts the failed trees back in the queue (they go on from their last commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from escpro.config import AppConfig
from escpro.errors import EscproError
from escpro.mcts.config import SEARCH_KEYS
from escpro.store.db import check_escpro_file, connect
from escpro.store.reader import load_nodes, load_runs, load_trees
from escpro.store.schema import DATA_RULES_VERSION

# The roles' math: how scores become priors and rewards (so Q values), and when a dialogue ends.
ROLE_MATH_KEYS = ("prior_temperature", "reward_alpha", "reward_bias", "end_marker")


class ResumeError(EscproError):
    pass


@dataclass
class Existing:
    """The build already in the file (empty for a new file)."""

    runs: list[dict] = field(default_factory=list)
    trees: dict[str, dict] = field(default_factory=dict)  # tree_id -> row
    nodes: dict[str, list[dict]] = field(default_factory=dict)  # tree_id -> rows (unfinished)
    retried: list[str] = field(default_factory=list)  # failed trees put back by --retry-failed


def read_existing(db: Path, tids: list[str], *, resume: bool, retry_failed: bool,
                  timeout_s: float) -> Existing:
    """The file's runs, trees and the nodes of the trees still to grow; refuses a foreign file,
    an unknown schema, and an existing build without --resume."""
    out = Existing()
    if not db.exists():
        return out
    con = connect(db, read_only=True, timeout_s=timeout_s)
    try:
        check_escpro_file(con, db, for_writing=True)
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()").fetchall()}
        if "runs" not in tables:
            return out  # an empty DuckDB file (e.g. created by the build lock)
        out.runs = load_runs(con)
        if out.runs and not resume:
            raise ResumeError(f"{db} already holds a build; pass --resume to continue it, or "
                              "choose another --db")
        out.trees = load_trees(con, tids) if "trees" in tables else {}
        again = ("failed",) if retry_failed else ()
        out.retried = sorted(t for t, r in out.trees.items() if r.get("status") in again)
        grow = [t for t, r in out.trees.items()
                if r.get("status") not in ("done", "failed") or t in out.retried]
        out.nodes = load_nodes(con, grow)
    finally:
        con.close()
    for t in out.retried:  # back in the queue: the search goes on from the last commit
        out.trees[t] = {**out.trees[t], "status": "running", "consecutive_failures": 0}
    return out


def check_resume(runs: list[dict], cfg: AppConfig, seeds_sha: str, db: Path) -> dict:
    """The first run's record; refuses what would make the continued trees differ from the
    trees already in the file."""
    old_rules = [r.get("data_rules_version") for r in runs]
    stale = [v for v in old_rules if v != DATA_RULES_VERSION]
    if stale:
        v = stale[0]
        why = ("older data rules" if v is None or v < DATA_RULES_VERSION
               else "newer data rules (a newer escpro)")
        raise ResumeError(
            f"{db}: the trees were built under {why} (version {v if v is not None else 1}, this "
            f"escpro uses {DATA_RULES_VERSION}); they must be rebuilt: build into a new --db")
    first = runs[0]
    if first.get("seeds_sha256") and first["seeds_sha256"] != seeds_sha:
        raise ResumeError(
            f"{db}: built from another seeds file (sha256 {first['seeds_sha256'][:12]}, "
            f"this one {seeds_sha[:12]}); resume with the same file"
        )
    stored = first.get("config") or {}
    diff = []
    for section, keys, now in (("build", SEARCH_KEYS, cfg.build), ("roles", ROLE_MATH_KEYS, cfg.roles)):
        old, new = stored.get(section, {}), now.model_dump(mode="json")
        diff += [(f"{section}.{k}", old[k], new.get(k)) for k in keys if k in old and old[k] != new.get(k)]
    if diff:
        k, was, now = diff[0]
        raise ResumeError(
            f"{db}: {k} was {was!r}, now {now!r}; a resumed build must keep the search settings "
            f"({', '.join(d[0] for d in diff)})"
        )
    return first
