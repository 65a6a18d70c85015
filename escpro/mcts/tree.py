"""Node math of the paper's MCTS (docs/paper.md section 3), free of models and I/O.

Everything here is deterministic: ties are broken by child order (child index = the strategy's
position in the taxonomy), so a search replayed from the same committed state takes the same
path. Nodes are plain mutable dataclasses; the functions that change them (backprop) touch only
the nodes they are given and mark them dirty so the store writes exactly what changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

NodeKind = str  # "root" | "unexpanded" | "expanded" | "end"


@dataclass(eq=False)
class Node:
    """One tree node. `path` is the child-index path from the root (() for the root)."""

    path: tuple[int, ...]
    kind: NodeKind
    strategy: str | None = None
    prior: float = 0.0
    q: float = 0.0
    n: int = 0
    supporter_text: str | None = None
    seeker_text: str | None = None
    is_end: bool = False
    is_gold: bool = False
    created_iter: int = 0
    strategy_score: int | None = None
    # Tree-parallel search only (never stored): selections in flight through this node, and
    # whether an in-flight iteration is working on it (its subtree is then not selectable).
    vl: int = 0
    busy: bool = False
    parent: Node | None = field(default=None, repr=False)
    children: list[Node] = field(default_factory=list, repr=False)

    @property
    def depth(self) -> int:
        return len(self.path)

    @property
    def child_index(self) -> int | None:
        return self.path[-1] if self.path else None

    def ancestors_and_self(self) -> list[Node]:
        """From this node up to the root (inclusive)."""
        out: list[Node] = []
        node: Node | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out


def pucb(q: float, n: int, prior: float, parent_n: int, c: float) -> float:
    """PUCB = Q + c * P * sqrt(N_parent) / (1 + N)."""
    return q + c * prior * math.sqrt(parent_n) / (1 + n)


def with_virtual_loss(q: float, n: int, vl: int, loss: float) -> tuple[float, int]:
    """Q and N as seen by a concurrent selection: each of the `vl` selections in flight counts
    as a visit with reward -loss. Without any in flight the values are returned unchanged."""
    if vl == 0:
        return q, n
    return (q * n - vl * loss) / (n + vl), n + vl


def best_child_pucb(node: Node, c: float, loss: float = 0.0) -> Node | None:
    """The child with the largest PUCB; the first (lowest child index) wins a tie. Busy
    children (tree-parallel search) are skipped; None when every child is busy."""
    if not node.children:
        raise ValueError("node has no children")
    best, best_v = None, -math.inf
    _, parent_n = with_virtual_loss(node.q, node.n, node.vl, loss)
    for ch in node.children:
        if ch.busy:
            continue
        q, n = with_virtual_loss(ch.q, ch.n, ch.vl, loss)
        v = pucb(q, n, ch.prior, parent_n, c)
        if best is None or v > best_v:
            best, best_v = ch, v
    return best


def select(root: Node, c: float, loss: float = 0.0) -> list[Node] | None:
    """Selection: from the root, follow the largest PUCB until a node without children.
    Returns the path root..leaf.

    Tree-parallel search marks nodes busy; a branch that leads only to busy nodes is then left
    for the next-best sibling, and None means nothing is selectable right now. Without busy
    nodes this is exactly the greedy descent.
    """
    if root.busy:
        return None
    if not root.children:
        return [root]
    _, parent_n = with_virtual_loss(root.q, root.n, root.vl, loss)
    scored = []
    for ch in root.children:
        if ch.busy:
            continue
        q, n = with_virtual_loss(ch.q, ch.n, ch.vl, loss)
        scored.append((-pucb(q, n, ch.prior, parent_n, c), ch.path[-1], ch))
    scored.sort(key=lambda t: (t[0], t[1]))
    for _, _, ch in scored:
        sub = select(ch, c, loss)
        if sub is not None:
            return [root, *sub]
    return None


def updated_value(q: float, n: int, reward: float) -> tuple[float, int]:
    """Q <- (Q * N + R) / (N + 1), N <- N + 1."""
    return (q * n + reward) / (n + 1), n + 1


def backpropagate(node: Node, reward: float) -> list[Node]:
    """Apply the update to `node` and every ancestor; returns the nodes touched (leaf first)."""
    touched = node.ancestors_and_self()
    for nd in touched:
        nd.q, nd.n = updated_value(nd.q, nd.n, reward)
    return touched


def highest_prior(children: Iterable[Node]) -> Node:
    """The child simulated after an expansion: the highest prior, lowest index on a tie."""
    best: Node | None = None
    for ch in children:
        if best is None or ch.prior > best.prior:
            best = ch
    if best is None:
        raise ValueError("no children")
    return best


def greedy_strategy(scores: Mapping[str, float]) -> str:
    """The rollout's strategy: the top score, the first in taxonomy order on a tie."""
    best, best_v = None, -math.inf
    for name, v in scores.items():
        if v > best_v:
            best, best_v = name, v
    if best is None:
        raise ValueError("no scores")
    return best


def mean_reward(rewards: Iterable[float]) -> float | None:
    vals = list(rewards)
    return sum(vals) / len(vals) if vals else None


def gold_child_priors(
    names: list[str],
    scores: Mapping[str, float],
    gold: str,
    prior: Callable[[Mapping[str, float]], Mapping[str, float]],
    unscored_scale: float,
    unscored_prior: float,
) -> dict[str, float]:
    """Priors of the children at a gold turn, keyed by strategy in taxonomy order.

    The scored strategies get prior(scores). When the gold strategy was not scored, the others
    are scaled by `unscored_scale` (0.9) and the gold child gets `unscored_prior` (0.1), the
    reference rule. Strategies that were not scored (and are not gold) get no child.
    """
    scored = {k: float(scores[k]) for k in names if k in scores}
    base = dict(prior(scored)) if scored else {}
    if gold in scored:
        return {k: base[k] for k in names if k in base}
    out: dict[str, float] = {}
    for k in names:
        if k == gold:
            out[k] = unscored_prior
        elif k in base:
            out[k] = base[k] * unscored_scale
    return out


@dataclass(frozen=True)
class StopRules:
    min_iterations: int
    max_iterations: int
    min_end_nodes: int
    max_end_nodes: int


def stop_reason(iterations: int, end_nodes: int, rules: StopRules) -> str | None:
    """Why the search stops before its next iteration, or None to go on.

    Checked before every iteration (including one that would re-select an end node, unlike the
    reference code): max iterations; max end nodes; min iterations reached with at least
    min end nodes.
    """
    if iterations >= rules.max_iterations:
        return "max_iterations"
    if end_nodes >= rules.max_end_nodes:
        return "max_end_nodes"
    if iterations >= rules.min_iterations and end_nodes >= rules.min_end_nodes:
        return "min_iterations_and_end_nodes"
    return None


def add_child(parent: Node, index: int, **fields) -> Node:
    """Attach a child at `index`, keeping children ordered by index."""
    child = Node(path=parent.path + (index,), parent=parent, **fields)
    parent.children.append(child)
    parent.children.sort(key=lambda ch: ch.path[-1])
    return child


def walk(root: Node) -> Iterable[Node]:
    """Pre-order, children in index order."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))
