"""Valid paths and preference pairs (docs/paper.md section 4), as pure functions of a Tree.

Paper rule (default): a valid path runs from the root to an end node and every node on it has
Q >= theta. The root is not a supporter turn (it holds the first seeker turn and its Q is the
mean over the whole search), so it is not tested. Reference rule (the authors' released code):
only the end node is tested, with Q >= theta and N >= min_n.

A pair is (a node on a valid path, an expanded sibling with Q < theta that lies on no valid
path and was judged at least once, N >= 1); its prompt is the dialogue before that turn. A
sibling that an iteration extended but never judged (the iteration failed before
backpropagation) has Q = 0 by construction, not by a judgement: it is not a rejected example,
and is counted in TreeResult.unjudged_excluded (the manifest's `excluded` block). The authors'
code has no such nodes in practice (an extended node is judged in the same iteration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from escpro.extract.tree import Node, Tree

Rule = Literal["paper", "reference"]


@dataclass(frozen=True)
class ValidPath:
    path_id: str  # the end node's id: one ESC-Pro dialogue
    node_ids: tuple[str, ...]  # root's child ... end node


@dataclass(frozen=True)
class Pair:
    tree_id: str
    chosen_id: str
    rejected_id: str
    path_ids: tuple[str, ...]  # valid paths the chosen node lies on


@dataclass(frozen=True)
class TreeResult:
    tree_id: str
    paths: tuple[ValidPath, ...]
    pairs: tuple[Pair, ...]
    reason: str | None = None  # why there is no valid path / no pair (None when both exist)
    # siblings with Q < theta off every valid path left out because they were never judged (N = 0)
    unjudged_excluded: int = 0


def _q_at_least(node: Node, theta: float) -> bool:
    return node.q is not None and node.q >= theta


def valid_paths(tree: Tree, theta: float, rule: Rule = "paper", min_n: int = 2) -> list[ValidPath]:
    """Every valid path of the tree, ordered by end node id."""
    ends = [n for n in tree.nodes.values() if n.ended and not n.is_root and n.has_reply]
    out = []
    for end in sorted(ends, key=lambda n: n.node_id):
        chain = tree.ancestry(end.node_id)
        if rule == "paper":
            ok = all(n.has_reply and _q_at_least(n, theta) for n in chain)
        elif rule == "reference":
            ok = _q_at_least(end, theta) and (end.n or 0) >= min_n
            ok = ok and all(n.has_reply for n in chain)
        else:  # pragma: no cover - the CLI restricts the choice
            raise ValueError(f"unknown rule {rule!r}")
        if ok:
            out.append(ValidPath(end.node_id, tuple(n.node_id for n in chain)))
    return out


def _pairs_and_unjudged(
    tree: Tree, paths: list[ValidPath], theta: float
) -> tuple[list[Pair], set[str]]:
    """(preferred, non-preferred) node pairs, one per chosen node and judged rejected sibling;
    and the rejected siblings left out because they were never judged."""
    on_path: dict[str, list[str]] = {}
    for p in paths:
        for nid in p.node_ids:
            on_path.setdefault(nid, []).append(p.path_id)
    pairs, unjudged = [], set()
    for nid in sorted(on_path):
        for sib in tree.siblings(nid):
            if not sib.has_reply or sib.node_id in on_path:
                continue
            if sib.q is None or sib.q >= theta:
                continue
            if (sib.n or 0) < 1:
                unjudged.add(sib.node_id)
                continue
            pairs.append(Pair(tree.tree_id, nid, sib.node_id, tuple(sorted(on_path[nid]))))
    return pairs, unjudged


def empty_reason(tree: Tree, theta: float, rule: Rule, min_n: int) -> str:
    """A one-line explanation of why a tree has no valid path."""
    ends = [n for n in tree.nodes.values() if n.ended and n.has_reply]
    if not tree.nodes:
        return "no nodes stored"
    if not ends:
        return "no end node"
    good_ends = [n for n in ends if _q_at_least(n, theta)]
    if not good_ends:
        best = max((n.q for n in ends if n.q is not None), default=None)
        return f"no end node with Q >= {theta:g} (best {best:.3f})" if best is not None else "no end node was ever scored"
    if rule == "reference":
        return f"no end node with Q >= {theta:g} and N >= {min_n}"
    return f"every path to an end node with Q >= {theta:g} has a node with Q < {theta:g}"


def extract_tree(tree: Tree, theta: float, rule: Rule = "paper", min_n: int = 2) -> TreeResult:
    paths = valid_paths(tree, theta, rule, min_n)
    pairs, unjudged = _pairs_and_unjudged(tree, paths, theta) if paths else ([], set())
    reason = None
    if not paths:
        reason = empty_reason(tree, theta, rule, min_n)
    elif not pairs:
        reason = f"valid paths but no expanded sibling with Q < {theta:g} off every valid path"
    return TreeResult(tree.tree_id, tuple(paths), tuple(pairs), reason, len(unjudged))


def exclusion_summary(results: list[TreeResult]) -> dict:
    """The manifest's `excluded` block: what the pair rules left out, and why."""
    return {
        "rejected_unjudged": sum(r.unjudged_excluded for r in results),
        "rejected_unjudged_rule": "an expanded sibling with Q < theta but N = 0 (never judged: "
        "its iteration failed before backpropagation) is not a rejected example",
    }
