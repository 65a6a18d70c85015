"""A synthetic tree of many nodes in a real build file (escpro's schema), for the large-tree test
and its measurement in docs/ui.md."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from escpro.store.schema import DDL

STRATS = ["Emotional Validation", "Affirmation", "Collaborative Planning", "Empathetic Statements",
          "Avoid Judgment and Criticism", "Provide Different Perspectives", "Reframe Negative Thoughts",
          "Share Information"]


def write_big_tree(path: Path, depth: int = 4, width: int = 8, tree_id: str = "big-0") -> int:
    """A full tree: every node has `width` children down to `depth` (8^4: 4681 nodes); the
    first child of every node is expanded, the others too down to depth 3, leaves are end nodes."""
    rows = []

    def add(suffix: str, d: int, k: int) -> None:
        nid = f"{tree_id}/{suffix}"
        leaf = d == depth
        rows.append({"node_id": nid, "tree_id": tree_id, "parent_id": None if d == 0 else f"{tree_id}/{suffix.rsplit('.', 1)[0]}",
                     "depth": d, "kind": "root" if d == 0 else ("end" if leaf else "expanded"),
                     "strategy": None if d == 0 else STRATS[k % 8], "prior": None if d == 0 else 1 / width,
                     "q": 0.6 if k == 0 else 0.1, "n": 3, "supporter_text": None if d == 0 else f"reply {suffix}",
                     "seeker_text": f"seeker {suffix}", "is_end": leaf, "is_gold": False, "created_iter": 0,
                     "child_index": None if d == 0 else k, "strategy_score": None})
        if not leaf:
            for i in range(width):
                add(f"{suffix}.{i}", d + 1, i)

    add("r", 0, 0)
    con = duckdb.connect(str(path))
    con.execute(DDL)
    con.execute("INSERT INTO runs (run_id, schema_version, taxonomy) VALUES ('run1', 1, 'cso8')")
    seed = {"seed_id": "s", "scene": "Big", "situation": "", "turns": [{"speaker": "seeker", "text": "seeker r"}]}
    con.execute("INSERT INTO trees (tree_id, run_id, status, iterations, seed, node_count) VALUES (?, 'run1', 'done', 1000, ?, ?)",
                [tree_id, json.dumps(seed), len(rows)])
    tbl = pa.Table.from_pylist(rows)  # noqa: F841 - read by DuckDB's replacement scan
    con.execute("INSERT INTO nodes BY NAME SELECT * FROM tbl")
    con.close()
    return len(rows)
