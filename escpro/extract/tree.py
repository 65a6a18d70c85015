"""The one place that knows how a stored tree becomes a dialogue.

Everything else in escpro.extract works on these dataclasses, so a change in how the build
stores trees (escpro.store / escpro.mcts) is adapted here and nowhere else.

Reading of the nodes table (escpro/store/schema.py):
- the root (parent_id NULL, kind "root") holds the first seeker turn in `seeker_text`;
- every other node is one supporter turn (`strategy`, `supporter_text`) followed by the seeker's
  answer (`seeker_text`, empty when the seeker ended the dialogue there);
- "unexpanded" nodes carry only a strategy and a prior (no reply yet);
- the turns of the seed dialogue before its first gold supporter turn (a greeting, the first
  seeker turn) are dialogue context; they come from the tree row's `seed` JSON
  (Dialogue.to_record()); gold nodes are followed by the seed's turns up to the next gold turn
  (their seeker_text joins only the seeker ones). The split of the seed and what a node adds
  to the dialogue are escpro.dialogue.gold_split and node_turns, the functions the build's
  contexts use (escpro.mcts.world), so a prompt is exactly the context the Supporter role saw
  during the build.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from escpro import dialogue
from escpro.dialogue import GoldSplit, Utterance
from escpro.taxonomy import Taxonomy


@dataclass(frozen=True)
class Node:
    node_id: str
    parent_id: str | None
    depth: int
    kind: str
    strategy: str | None = None
    prior: float | None = None
    q: float | None = None
    n: int | None = None
    supporter_text: str | None = None
    seeker_text: str | None = None
    is_end: bool = False
    is_gold: bool = False
    child_index: int | None = None

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def ended(self) -> bool:
        """An end node: the seeker closed the dialogue after this supporter turn."""
        return bool(self.is_end) or self.kind == "end"

    @property
    def has_reply(self) -> bool:
        """Expanded (or end) node: a supporter reply was generated for its strategy."""
        return not self.is_root and self.kind != "unexpanded" and self.supporter_text is not None


@dataclass
class Tree:
    tree_id: str
    nodes: dict[str, Node]
    run_id: str | None = None
    status: str | None = None
    scene: str = ""
    situation: str = ""
    iterations: int | None = None
    end_count: int | None = None
    seed: dict | None = None
    children: dict[str, list[str]] = field(default_factory=dict)
    root_id: str | None = None

    def __post_init__(self) -> None:
        kids: dict[str, list[Node]] = {}
        roots = []
        for node in self.nodes.values():
            if node.parent_id is None:
                roots.append(node.node_id)
            else:
                kids.setdefault(node.parent_id, []).append(node)
        self.children = {
            pid: [c.node_id for c in sorted(cs, key=_child_order)] for pid, cs in kids.items()
        }
        if self.root_id is None and roots:
            self.root_id = sorted(roots)[0]

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def kids(self, node_id: str) -> list[Node]:
        return [self.nodes[c] for c in self.children.get(node_id, [])]

    def siblings(self, node_id: str) -> list[Node]:
        parent = self.nodes[node_id].parent_id
        if parent is None:
            return []
        return [n for n in self.kids(parent) if n.node_id != node_id]

    def ancestry(self, node_id: str) -> list[Node]:
        """Nodes from the root's child down to node_id (the root itself excluded)."""
        chain = []
        cur: Node | None = self.nodes[node_id]
        while cur is not None and not cur.is_root:
            chain.append(cur)
            cur = self.nodes.get(cur.parent_id) if cur.parent_id else None
        return chain[::-1]


def _child_order(node: Node) -> tuple:
    return (node.child_index if node.child_index is not None else 1 << 30, node.node_id)


def strategy_name(node: Node, taxonomy: Taxonomy | None) -> str:
    """The taxonomy's canonical spelling of a node's strategy (the raw label if unknown)."""
    raw = node.strategy or ""
    if taxonomy is None:
        return raw
    return taxonomy.canonical(raw) or raw


def seed_utterances(tree: Tree) -> list[Utterance]:
    """The seed dialogue of the tree row's `seed` record (Dialogue.to_record())."""
    out = []
    for t in (tree.seed or {}).get("turns") or []:
        if isinstance(t, dict):
            out.append(Utterance(t.get("speaker", "seeker"), str(t.get("text") or ""), t.get("strategy"),
                                 bool(t.get("context_only"))))
    return out


def _split(tree: Tree) -> GoldSplit | None:
    return dialogue.gold_split(seed_utterances(tree))


def context_turns(tree: Tree) -> list[Utterance]:
    """The dialogue before the first gold supporter turn: the seed's turns up to it (a greeting,
    the first seeker turn), exactly what the build's root context holds (escpro.mcts.world).
    Without a seed record, the root's seeker turn alone."""
    split = _split(tree)
    if split is not None and any(u.speaker == "seeker" for u in split.root_history):
        return list(split.root_history)
    root = tree.nodes.get(tree.root_id) if tree.root_id else None
    return [Utterance("seeker", (root.seeker_text or "") if root else "")]


def _gold_tail(tree: Tree, node: Node) -> tuple[Utterance, ...] | None:
    """For a gold node: the seed's turns after its supporter turn up to the next gold turn."""
    if not node.is_gold or node.is_root:
        return None
    split = _split(tree)
    k = len(tree.ancestry(node.node_id)) - 1
    if split is None or not 0 <= k < len(split.tails):
        return None
    return split.tails[k]


def node_turns(tree: Tree, node: Node, taxonomy: Taxonomy | None) -> list[Utterance]:
    """What a node adds to the dialogue, as the build's contexts have it
    (escpro.dialogue.node_turns, with the strategy in the taxonomy's spelling)."""
    return list(dialogue.node_turns(strategy_name(node, taxonomy), node.supporter_text,
                                    node.seeker_text, node.ended, _gold_tail(tree, node)))


def history_before(tree: Tree, node_id: str, taxonomy: Taxonomy | None) -> list[Utterance]:
    """The dialogue a supporter saw when it wrote node_id's turn (ends with a seeker turn)."""
    turns = context_turns(tree)
    for anc in tree.ancestry(node_id)[:-1]:
        turns.extend(node_turns(tree, anc, taxonomy))
    return turns


def path_dialogue(
    tree: Tree, node_ids: list[str] | tuple[str, ...], taxonomy: Taxonomy | None
) -> list[Utterance]:
    """The full dialogue of a path (context, root seeker turn, every node's turns)."""
    turns = context_turns(tree)
    for nid in node_ids:
        turns.extend(node_turns(tree, tree.nodes[nid], taxonomy))
    return turns
