"""ESC-Pro-Random (the paper's ablation): each preferred supporter turn paired against a reply
the Supporter role writes for a randomly drawn other strategy.

All requests go out at once (asyncio.gather); the RoleSet's backend batches or bounds them, as in
the build. A failed call is counted and its pair skipped; it never stops the run.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from escpro.extract.records import assistant, prompt_messages
from escpro.extract.rules import TreeResult
from escpro.extract.tree import Tree, history_before, strategy_name
from escpro.roles.api import DialogueContext, RoleSet
from escpro.taxonomy import Taxonomy


@dataclass(frozen=True)
class Item:
    tree: Tree
    node_id: str
    path_ids: tuple[str, ...]
    strategy: str  # the random other strategy


def plan(
    trees: list[Tree], results: list[TreeResult], taxonomy: Taxonomy, seed: int
) -> list[Item]:
    """One item per distinct preferred node (a node shared by several valid paths once), with
    its random other strategy drawn from a generator seeded by `seed` in a fixed order."""
    rng = random.Random(seed)
    items = []
    for tree, res in zip(trees, results, strict=True):
        on_path: dict[str, list[str]] = {}
        for p in res.paths:
            for nid in p.node_ids:
                on_path.setdefault(nid, []).append(p.path_id)
        for nid in sorted(on_path):
            own = strategy_name(tree.node(nid), taxonomy)
            others = [s for s in taxonomy.names if s != own]
            if not others:
                continue
            items.append(Item(tree, nid, tuple(sorted(on_path[nid])), rng.choice(others)))
    return items


def context_of(tree: Tree, node_id: str, taxonomy: Taxonomy) -> DialogueContext:
    scene = tree.scene or (tree.seed or {}).get("scene", "")
    situation = tree.situation or (tree.seed or {}).get("situation", "")
    return DialogueContext(scene, situation, tuple(history_before(tree, node_id, taxonomy)))


async def generate(
    items: list[Item],
    roleset: RoleSet,
    taxonomy: Taxonomy,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict], dict]:
    """(pair records in item order, call summary)."""

    async def one(item: Item):
        ctx = context_of(item.tree, item.node_id, taxonomy)
        meta = {"tree_id": item.tree.tree_id, "node_id": item.node_id, "purpose": "ablation-random"}
        out = await roleset.support(ctx, item.strategy, meta=meta)
        if progress:
            progress(1)
        return out

    outcomes = await asyncio.gather(*(one(it) for it in items))
    records, status = [], Counter()
    tokens = [0, 0]
    errors: Counter = Counter()
    for item, oc in zip(items, outcomes, strict=True):
        res = oc.result
        status[res.status] += 1
        tokens[0] += res.prompt_tokens or 0
        tokens[1] += res.completion_tokens or 0
        if not oc.ok or not str(oc.value).strip():
            errors[(res.error or res.status or "empty reply").splitlines()[0][:120]] += 1
            continue
        node = item.tree.node(item.node_id)
        own = strategy_name(node, taxonomy)
        records.append(
            {
                "prompt": prompt_messages(item.tree, item.node_id, taxonomy),
                "chosen": [assistant(own, node.supporter_text or "")],
                "rejected": [assistant(item.strategy, str(oc.value))],
                "tree_id": item.tree.tree_id,
                "chosen_node_id": item.node_id,
                "rejected_node_id": None,
                "path_ids": list(item.path_ids),
                "chosen_strategy": own,
                "rejected_strategy": item.strategy,
                "chosen_q": node.q,
                "rejected_q": None,
                "turn": len(item.tree.ancestry(item.node_id)),
                "ablation": "random",
            }
        )
    summary = {
        "requests": len(items),
        "status": dict(status),
        "failed": len(items) - len(records),
        "prompt_tokens": tokens[0],
        "completion_tokens": tokens[1],
        "errors": dict(errors.most_common(5)),
    }
    return records, summary
