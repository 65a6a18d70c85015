"""Rebuild a tree's search state from its committed rows (resume).

The node rows hold everything the search reads (kind, texts, prior, Q, N, end flag); the gold
nodes' trailing seed turns are re-derived from the seed itself, and the counters come from the
tree row. The rebuilt state is what the search had at its last commit, so continuing from it is
the uninterrupted run's continuation.
"""

from __future__ import annotations

from escpro.mcts.state import TreeState
from escpro.mcts.tree import Node
from escpro.mcts.world import GoldLayout
from escpro.store.ids import parse_node_path


class CorruptTree(ValueError):
    pass


def restore_state(
    tree_row: dict, node_rows: list[dict], layout: GoldLayout, run_id: str
) -> tuple[TreeState, dict[tuple[int, ...], tuple]]:
    """(state, gold_tails) from rows; node rows must be parents-first (depth order)."""
    tid = tree_row["tree_id"]
    st = TreeState(tree_id=tid, run_id=run_id)
    st.iterations = int(tree_row.get("iterations") or 0)
    st.status = tree_row.get("status") or "pending"
    st.error = tree_row.get("error")
    st.stop_reason = tree_row.get("stop_reason")
    st.consecutive_failures = int(tree_row.get("consecutive_failures") or 0)
    st.failed_iterations = int(tree_row.get("failed_iterations") or 0)
    if not node_rows:
        if st.status == "running":
            st.status = "pending"
        return st, {}
    by_path: dict[tuple[int, ...], Node] = {}
    for r in node_rows:
        _, path = parse_node_path(r["node_id"])
        parent = by_path.get(path[:-1]) if path else None
        if path and parent is None:
            raise CorruptTree(f"{tid}: node {r['node_id']} has no parent row")
        nd = Node(
            path=path,
            kind=r["kind"],
            strategy=r["strategy"],
            prior=float(r["prior"] or 0.0),
            q=float(r["q"] or 0.0),
            n=int(r["n"] or 0),
            supporter_text=r["supporter_text"],
            seeker_text=r["seeker_text"],
            is_end=bool(r["is_end"]),
            is_gold=bool(r["is_gold"]),
            created_iter=int(r["created_iter"] or 0),
            strategy_score=r.get("strategy_score"),
            parent=parent,
        )
        by_path[path] = nd
        if parent is not None:
            parent.children.append(nd)
    for nd in by_path.values():
        nd.children.sort(key=lambda ch: ch.path[-1])
    root = by_path.get(())
    if root is None:
        raise CorruptTree(f"{tid}: no root node")
    st.root = root
    st.end_count = sum(1 for nd in by_path.values() if nd.is_end)
    st.node_count = len(by_path)
    # The gold path: at depth k the gold child carries gold turn k's strategy.
    tails: dict[tuple[int, ...], tuple] = {}
    node = root
    for k, gt in enumerate(layout.turns):
        gold = [ch for ch in node.children if ch.is_gold and ch.strategy == gt.strategy]
        if not gold:
            raise CorruptTree(f"{tid}: gold turn {k} is missing from the stored tree")
        node = gold[0]
        tails[node.path] = gt.tail
    return st, tails
