"""Tree queries for the UI, always through escpro's store reader (read-only, hardened, polite to
a running build: every request opens the file, reads and lets go, so a build waits at most one
request's time for its next commit).

Valid paths, pairs and the marks are those of `escpro tree` (escpro.extract.rules and
escpro.extract.render.Marks). A parsed tree is cached per (tree id, file stamp), so expanding
nodes of a tree with thousands of nodes costs one dictionary lookup, not one read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from escpro.errors import DataError
from escpro.extract import pipeline as extract_trees
from escpro.extract.render import Marks
from escpro.extract.rules import TreeResult, extract_tree
from escpro.extract.tree import Node, Tree, context_turns, history_before, node_turns, strategy_name
from escpro.store import reader as dbio
from escpro.store.reader import open_read_only, rows
from escpro.taxonomy import Taxonomy, load_taxonomy
from escpro.ui.options import NotFound

CALL_COLUMNS = ("call_id", "node_id", "iteration", "role", "backend", "model", "status", "error", "attempts",
                "prompt_tokens", "completion_tokens", "latency_ms", "cached", "response")
JUDGEMENT_COLUMNS = ("iteration", "turn_offset", "empathy", "information", "humanoid",
                     "strategy_score", "reward")
MAX_CALLS = 200


@dataclass
class Loaded:
    tree: Tree
    result: TreeResult
    marks: Marks


class TreeSource:
    def __init__(self, path: Path, *, theta: float, rule: str, min_n: int, lock_timeout_s: float = 10.0,
                 cache_size: int = 8) -> None:
        self.path = Path(path)
        self.theta, self.rule, self.min_n = theta, rule, min_n
        self.lock_timeout_s = lock_timeout_s
        self._cache: OrderedDict[tuple, Loaded] = OrderedDict()
        self._summary: tuple[tuple, list[dict]] | None = None
        self._lock = threading.Lock()
        self._cache_size = cache_size
        self._taxonomy: Taxonomy | None = None

    # ---- connection ----
    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = open_read_only(self.path, timeout_s=self.lock_timeout_s)
        try:
            yield con
        finally:
            con.close()

    def stamp(self) -> tuple:
        """Changes whenever a build commits (the file or its WAL is written)."""
        out = []
        for p in (self.path, Path(f"{self.path}.wal")):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def taxonomy(self) -> Taxonomy | None:
        if self._taxonomy is None:
            with self.connect() as con:
                runs = dbio.read_runs(con)
            names = [r.taxonomy for r in runs if r.taxonomy]
            try:
                self._taxonomy = load_taxonomy(names[0] if names else "cso8")
            except Exception:  # an unknown taxonomy file: raw labels are still shown
                return None
        return self._taxonomy

    # ---- trees ----
    def load(self, tree_id: str) -> Loaded:
        key = (tree_id, self.stamp())
        with self._lock:
            got = self._cache.get(key)
            if got is not None:
                self._cache.move_to_end(key)
                return got
        with self.connect() as con:
            try:
                tree = extract_trees.load_tree(con, tree_id)
            except DataError as exc:
                raise NotFound(str(exc)) from None
        res = extract_tree(tree, self.theta, self.rule, self.min_n)  # type: ignore[arg-type]
        loaded = Loaded(tree, res, Marks.of(tree, res))
        with self._lock:
            self._cache[key] = loaded
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return loaded

    def runs(self) -> list[dict]:
        with self.connect() as con:
            return rows(con, "SELECT run_id, taxonomy, seeds_path, random_seed, started_at, command "
                             "FROM runs ORDER BY started_at")

    def summaries(self) -> list[dict]:
        """Every tree with its counts, valid paths and pairs (recomputed when the file changes)."""
        stamp = self.stamp()
        if self._summary is not None and self._summary[0] == stamp:
            return self._summary[1]
        out = []
        with self.connect() as con:
            for tree in extract_trees.load_trees(con):
                res = extract_tree(tree, self.theta, self.rule, self.min_n)  # type: ignore[arg-type]
                out.append({
                    "tree_id": tree.tree_id, "run_id": tree.run_id, "status": tree.status,
                    "scene": tree.scene, "situation": tree.situation, "iterations": tree.iterations,
                    "nodes": len(tree.nodes), "end_nodes": sum(1 for n in tree.nodes.values() if n.ended),
                    "valid_paths": len(res.paths), "pairs": len(res.pairs), "reason": res.reason,
                    "seed_id": (tree.seed or {}).get("seed_id"),
                })
        self._summary = (stamp, out)
        return out

    # ---- nodes ----
    def node_json(self, lt: Loaded, node: Node) -> dict:
        tax = self.taxonomy()
        kids = lt.tree.children.get(node.node_id, [])
        return {
            "id": node.node_id, "parent": node.parent_id, "depth": node.depth, "kind": node.kind,
            "strategy": strategy_name(node, tax) if not node.is_root else None,
            "q": node.q, "n": node.n, "prior": node.prior,
            "end": node.ended, "gold": node.is_gold, "on_path": node.node_id in lt.marks.on_path,
            "rejected": node.node_id in lt.marks.rejected, "children": len(kids),
            "expanded_children": sum(1 for k in kids if lt.tree.nodes[k].kind != "unexpanded"),
            "reply": node.supporter_text, "seeker": node.seeker_text,
        }

    def children(self, tree_id: str, node_id: str) -> dict:
        lt = self.load(tree_id)
        if node_id not in lt.tree.nodes:
            raise NotFound(f"no node '{node_id}' in tree {tree_id}")
        kids = [self.node_json(lt, k) for k in lt.tree.kids(node_id)]
        for k in kids:  # the list needs no full texts; the detail endpoint has them
            k["reply"] = _short(k["reply"], 140)
            k.pop("seeker")
        return {"tree_id": tree_id, "node_id": node_id, "children": kids}

    def detail(self, tree_id: str, node_id: str) -> dict:
        lt = self.load(tree_id)
        node = lt.tree.nodes.get(node_id)
        if node is None:
            raise NotFound(f"no node '{node_id}' in tree {tree_id}")
        tax = self.taxonomy()
        if node.is_root:
            dialogue = context_turns(lt.tree)
        else:
            dialogue = history_before(lt.tree, node_id, tax) + (node_turns(lt.tree, node, tax) if node.has_reply else [])
        with self.connect() as con:
            judgements = _select(con, "judgements", JUDGEMENT_COLUMNS, "node_id = ?", [node_id],
                                 "iteration, turn_offset")
            # its own calls (reply, seeker answer, rollouts from it, rewards) and the parent's
            # strategy call that proposed it with its prior
            calls = _select(con, "llm_calls", CALL_COLUMNS, "node_id = ? OR (node_id = ? AND role = 'strategy')",
                            [node_id, node.parent_id or node_id], "iteration, call_id", limit=MAX_CALLS)
        return {
            "node": self.node_json(lt, node),
            "path": [a.node_id for a in lt.tree.ancestry(node_id)],
            "dialogue": [{"speaker": u.speaker, "text": u.text, "strategy": u.strategy} for u in dialogue],
            "judgements": judgements, "calls": calls, "calls_limit": MAX_CALLS,
        }


def _short(text: str | None, width: int) -> str | None:
    if text is None:
        return None
    t = " ".join(text.split())
    return t if len(t) <= width else t[: width - 1] + "…"


def _select(con: duckdb.DuckDBPyConnection, table: str, cols: tuple[str, ...], where: str,
            params: list, order: str, limit: int | None = None) -> list[dict]:
    """Documented columns only (an older file lacks some: NULL), bound parameters only."""
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
    if not have:
        return []
    sel = ", ".join(c if c in have else f"NULL AS {c}" for c in cols)
    order_cols = ", ".join(c for c in order.split(", ") if c in have) or "1"
    sql = f"SELECT {sel} FROM {table} WHERE {where} ORDER BY {order_cols}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return rows(con, sql, params)
