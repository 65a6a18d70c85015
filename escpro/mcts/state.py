"""What one tree's search commits: the tree's state between iterations and the rows a commit
point writes. Kept apart from the search so the writer, the scheduler and resume share it
without the search code."""

from __future__ import annotations

from dataclasses import dataclass, field

from escpro.mcts.tree import Node
from escpro.store.ids import node_id


@dataclass
class Delta:
    """What one commit point changed: node rows to upsert, rows to append, the tree row."""

    tree_row: dict
    nodes: list[dict] = field(default_factory=list)
    judgements: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    iterations_done: int = 0  # iterations finished since the previous delta (progress display)


@dataclass
class TreeState:
    tree_id: str
    run_id: str
    root: Node | None = None
    iterations: int = 0
    end_count: int = 0
    status: str = "pending"
    error: str | None = None
    stop_reason: str | None = None
    consecutive_failures: int = 0
    failed_iterations: int = 0
    node_count: int = 0
    dirty: dict[tuple[int, ...], Node] = field(default_factory=dict)

    def mark(self, *nodes: Node) -> None:
        for nd in nodes:
            self.dirty[nd.path] = nd


def node_row(tree_id: str, nd: Node) -> dict:
    return {
        "node_id": node_id(tree_id, nd.path),
        "tree_id": tree_id,
        "parent_id": node_id(tree_id, nd.parent.path) if nd.parent is not None else None,
        "depth": nd.depth,
        "kind": nd.kind,
        "strategy": nd.strategy,
        "prior": nd.prior,
        "q": nd.q,
        "n": nd.n,
        "supporter_text": nd.supporter_text,
        "seeker_text": nd.seeker_text,
        "is_end": nd.is_end,
        "is_gold": nd.is_gold,
        "created_iter": nd.created_iter,
        "child_index": nd.child_index,
        "strategy_score": nd.strategy_score,
    }
