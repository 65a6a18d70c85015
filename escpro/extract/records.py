"""Training records from trees: TRL conversational preference / KTO / SFT rows (pure functions).

Text is written by escpro.formatting (system prompt listing the taxonomy's strategies, supporter
turns "(<Strategy>) <reply>") so training and evaluation see exactly the same format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from escpro.extract.rules import Pair, ValidPath
from escpro.extract.tree import Tree, history_before, path_dialogue, strategy_name
from escpro.formatting import format_supporter_turn, to_messages
from escpro.taxonomy import Taxonomy


def assistant(strategy: str, reply: str) -> dict[str, str]:
    return {"role": "assistant", "content": format_supporter_turn(strategy, reply)}


def prompt_messages(tree: Tree, node_id: str, taxonomy: Taxonomy) -> list[dict[str, str]]:
    """System prompt plus the dialogue before node_id's supporter turn (ends with the user)."""
    return to_messages(taxonomy, history_before(tree, node_id, taxonomy))


def pair_record(tree: Tree, pair: Pair, taxonomy: Taxonomy) -> dict:
    chosen = tree.node(pair.chosen_id)
    rejected = tree.node(pair.rejected_id)
    return {
        "prompt": prompt_messages(tree, pair.chosen_id, taxonomy),
        "chosen": [assistant(strategy_name(chosen, taxonomy), chosen.supporter_text or "")],
        "rejected": [assistant(strategy_name(rejected, taxonomy), rejected.supporter_text or "")],
        "tree_id": tree.tree_id,
        "chosen_node_id": chosen.node_id,
        "rejected_node_id": rejected.node_id,
        "path_ids": list(pair.path_ids),
        "chosen_strategy": strategy_name(chosen, taxonomy),
        "rejected_strategy": strategy_name(rejected, taxonomy),
        "chosen_q": chosen.q,
        "rejected_q": rejected.q,
        "turn": len(tree.ancestry(chosen.node_id)),
    }


def sft_record(tree: Tree, path: ValidPath, taxonomy: Taxonomy) -> dict:
    return {
        "messages": to_messages(taxonomy, path_dialogue(tree, path.node_ids, taxonomy)),
        "tree_id": tree.tree_id,
        "path_id": path.path_id,
        "node_ids": list(path.node_ids),
        "is_gold": all(tree.node(n).is_gold for n in path.node_ids),
    }


def _key(*parts: object) -> str:
    return json.dumps(parts, ensure_ascii=False, sort_keys=True)


def dedupe_pairs(records: Iterable[dict]) -> tuple[list[dict], int]:
    """Drop pairs whose (prompt, chosen, rejected) text repeats an earlier one."""
    seen: set[str] = set()
    out, dropped = [], 0
    for r in records:
        k = _key(r["prompt"], r["chosen"], r["rejected"])
        if k in seen:
            dropped += 1
            continue
        seen.add(k)
        out.append(r)
    return out, dropped


def kto_records(pairs: Iterable[dict]) -> tuple[list[dict], int]:
    """Split pairs into unpaired desirable/undesirable examples, dropping repeats.

    A preferred turn usually has several rejected siblings, so without de-duplication it would be
    weighted once per sibling.
    """
    seen: set[str] = set()
    out, dropped = [], 0
    for r in pairs:
        for side, label in (("chosen", True), ("rejected", False)):
            k = _key(r["prompt"], r[side], label)
            if k in seen:
                dropped += 1
                continue
            seen.add(k)
            out.append(
                {
                    "prompt": r["prompt"],
                    "completion": r[side],
                    "label": label,
                    "tree_id": r["tree_id"],
                    "node_id": r[f"{side}_node_id"],
                    "strategy": r[f"{side}_strategy"],
                }
            )
    return out, dropped


def dedupe_sft(records: Iterable[dict]) -> tuple[list[dict], int]:
    seen: set[str] = set()
    out, dropped = [], 0
    for r in records:
        k = _key(r["messages"])
        if k in seen:
            dropped += 1
            continue
        seen.add(k)
        out.append(r)
    return out, dropped
