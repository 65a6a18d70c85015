"""Hand-built trees whose valid paths and pairs are known, stored the way `escpro build` stores them.

Tree "t1" (theta 0.5) -- strategy, Q, N, kind:
  r      root  seeker "I lost my job."
  r.0    Emotional Validation    1.00 100 expanded gold
    r.0.0  Affirmation           1.00 100 end gold
    r.0.1  Collaborative Planning 0.20  3 expanded
    r.0.2  Share Information     0.50   1 end          (Q == theta)
    r.0.3  Reframe Negative Thoughts  -  0 unexpanded
  r.1    Empathetic Statements   0.70   4 expanded
    r.1.0  Provide Different Perspectives 0.80 2 end
    r.1.1  Avoid Judgment and Criticism   0.10 2 expanded
  r.2    Collaborative Planning  0.30   5 expanded
    r.2.0  Emotional Validation  0.90   3 end          (valid only by the reference rule)
    r.2.1  Share Information    -0.50   1 expanded
  r.3    Share Information       0.49   2 end
Tree "t2": end nodes, none with Q >= 0.5. Tree "t3": no end node at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from escpro.extract.tree import Node, Tree
from escpro.store.schema import DDL

EV, AFF, CP, ES = "Emotional Validation", "Affirmation", "Collaborative Planning", "Empathetic Statements"
AJC, PDP, RNT, SI = "Avoid Judgment and Criticism", "Provide Different Perspectives", "Reframe Negative Thoughts", "Share Information"

SEED_T1 = {
    "seed_id": "s1",
    "scene": "Job loss",
    "situation": "I was laid off last week.",
    "turns": [
        {"speaker": "supporter", "text": "Hi, how can I help?", "context_only": True},
        {"speaker": "seeker", "text": "I lost my job."},
        {"speaker": "supporter", "text": "That sounds hard.", "strategy": EV},
        {"speaker": "seeker", "text": "It is."},
        {"speaker": "supporter", "text": "You are strong.", "strategy": AFF},
        {"speaker": "seeker", "text": "Thanks, bye."},
    ],
}

# (suffix, strategy, prior, q, n, kind, supporter, seeker, gold)
T1_NODES = [
    ("r", None, None, 0.6, 120, "root", None, "I lost my job.", True),
    ("r.0", EV, 0.3, 1.0, 100, "expanded", "That sounds hard.", "It is.", True),
    ("r.0.0", AFF, 0.4, 1.0, 100, "end", "You are strong.", "Thanks, bye.", True),
    ("r.0.1", CP, 0.3, 0.2, 3, "expanded", "Let us plan your search.", "Maybe.", False),
    ("r.0.2", SI, 0.2, 0.5, 1, "end", "Many people find work again within months.", "", False),
    ("r.0.3", RNT, 0.1, 0.0, 0, "unexpanded", None, None, False),
    ("r.1", ES, 0.25, 0.7, 4, "expanded", "I hear how painful this is.", "Yes, very.", False),
    ("r.1.0", PDP, 0.5, 0.8, 2, "end", "It could be a chance to rethink things.", "True. Bye.", False),
    ("r.1.1", AJC, 0.5, 0.1, 2, "expanded", "Nobody is judging you here.", "Ok.", False),
    ("r.2", CP, 0.25, 0.3, 5, "expanded", "Shall we make a plan?", "Not yet.", False),
    ("r.2.0", EV, 0.6, 0.9, 3, "end", "That is completely understandable.", "Thank you.", False),
    ("r.2.1", SI, 0.4, -0.5, 1, "expanded", "Unemployment benefits exist.", "Hm.", False),
    ("r.3", SI, 0.2, 0.49, 2, "end", "Job centres can help.", "Bye.", False),
]

T2_NODES = [
    ("r", None, None, 0.0, 10, "root", None, "I feel alone.", True),
    ("r.0", EV, 0.5, 0.2, 4, "end", "That must be hard.", "Bye.", True),
    ("r.1", SI, 0.5, 0.1, 3, "expanded", "Clubs are a way to meet people.", "Ok.", False),
]

T3_NODES = [
    ("r", None, None, 0.0, 2, "root", None, "Exams stress me.", True),
    ("r.0", EV, 0.5, 0.9, 2, "expanded", "Exams are stressful.", "Yes.", True),
]


def node_rows(tree_id: str, spec: list[tuple]) -> list[dict]:
    rows = []
    for suffix, strategy, prior, q, n, kind, sup, seek, gold in spec:
        parent = None if suffix == "r" else f"{tree_id}/{suffix.rsplit('.', 1)[0]}"
        rows.append(
            {
                "node_id": f"{tree_id}/{suffix}",
                "tree_id": tree_id,
                "parent_id": parent,
                "depth": suffix.count("."),
                "kind": kind,
                "strategy": strategy,
                "prior": prior,
                "q": q,
                "n": n,
                "supporter_text": sup,
                "seeker_text": seek,
                "is_end": kind == "end",
                "is_gold": gold,
                "child_index": int(suffix.rsplit(".", 1)[1]) if suffix != "r" else None,
            }
        )
    return rows


def make_tree(tree_id: str, spec: list[tuple], seed: dict | None = None) -> Tree:
    nodes = {}
    for r in node_rows(tree_id, spec):
        r = dict(r)
        r.pop("tree_id")
        nodes[r["node_id"]] = Node(**r)
    return Tree(tree_id=tree_id, nodes=nodes, status="done", seed=seed, scene=(seed or {}).get("scene", ""))


def seed_for(text: str) -> dict:
    return {"seed_id": "x", "scene": "Loneliness", "situation": "", "turns": [{"speaker": "seeker", "text": text}]}


def write_db(path: Path, trees: list[tuple[str, list[tuple], dict | None, str]], calls: list[dict] | None = None,
             taxonomy: str = "cso8") -> Path:
    con = duckdb.connect(str(path))
    con.execute(DDL)
    con.execute(
        "INSERT INTO runs (run_id, schema_version, taxonomy, seeds_sha256) VALUES ('run1', 1, ?, 'abc')",
        [taxonomy],
    )
    for i, (tid, spec, seed, status) in enumerate(trees):
        ends = sum(1 for s in spec if s[5] == "end")
        con.execute(
            "INSERT INTO trees (tree_id, run_id, seed_id, seed_index, scene, situation, status, iterations,"
            " end_count, seed) VALUES (?, 'run1', ?, ?, ?, ?, ?, ?, ?, ?)",
            [tid, (seed or {}).get("seed_id"), i, (seed or {}).get("scene"), (seed or {}).get("situation"),
             status, 100 + i, ends, json.dumps(seed) if seed else None],
        )
        for r in node_rows(tid, spec):
            cols = ", ".join(r)
            con.execute(f"INSERT INTO nodes ({cols}) VALUES ({', '.join('?' for _ in r)})", list(r.values()))
    for c in calls or []:
        cols = ", ".join(c)
        con.execute(f"INSERT INTO llm_calls ({cols}) VALUES ({', '.join('?' for _ in c)})", list(c.values()))
    con.close()
    return path


@pytest.fixture
def t1() -> Tree:
    return make_tree("t1", T1_NODES, SEED_T1)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    calls = []
    for i, (role, status, pt, ct, lat) in enumerate([
        ("strategy", "ok", 100, 20, 50.0), ("strategy", "invalid", 100, 30, 70.0),
        ("supporter", "ok", 200, 40, 100.0), ("supporter", "ok", 220, 60, 300.0),
        ("reward", "timeout", 150, 0, 1000.0),
    ]):
        calls.append({"call_id": f"c{i}", "run_id": "run1", "tree_id": "t1", "role": role, "status": status,
                      "prompt_tokens": pt, "completion_tokens": ct, "latency_ms": lat, "cached": False})
    return write_db(
        tmp_path / "build.duckdb",
        [("t1", T1_NODES, SEED_T1, "done"), ("t2", T2_NODES, seed_for("I feel alone."), "done"),
         ("t3", T3_NODES, seed_for("Exams stress me."), "done"), ("t4", T3_NODES, seed_for("Exams stress me."), "failed")],
        calls,
    )


@pytest.fixture
def fx():
    """This module's builders (test modules cannot import a conftest in importlib mode)."""
    import sys

    return sys.modules[__name__]
