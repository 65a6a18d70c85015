"""The validation split (`val_size`): held-out records for eval loss and reward accuracy.

Records of one tree share their dialogue prefix (a tree's pairs are sibling turns of one seed
dialogue), so a random record split would put near-copies on both sides and flatter the eval
numbers. The split is by tree: whole trees go to validation until it holds at least the asked
share or count of records. Deterministic in the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Split:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    val_groups: int
    groups: int


def group_key(rec: dict[str, Any], index: int) -> str:
    """The tree a record comes from (tree_id, or the prefix of its path ids), else itself."""
    if rec.get("tree_id"):
        return str(rec["tree_id"])
    ids = rec.get("path_ids") or ([rec["path_id"]] if rec.get("path_id") else [])
    if ids:
        return str(ids[0]).split("/", 1)[0]
    return f"#{index}"


def target_count(val_size: float, n: int) -> int:
    """LLaMA-Factory's meaning: a share when < 1, a record count otherwise."""
    if val_size <= 0:
        return 0
    want = round(val_size * n) if val_size < 1 else int(val_size)
    return max(1, min(want, n))


def split_by_tree(records: list[dict[str, Any]], val_size: float, seed: int) -> Split:
    """Whole trees to validation (in a seeded order) until the target count is reached."""
    want = target_count(val_size, len(records))
    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(group_key(rec, i), []).append(i)
    if not want:
        return Split(list(records), [], 0, len(groups))
    if len(groups) < 2:
        raise ValueError(f"val_size {val_size}: the data comes from {len(groups)} tree(s); a split by "
                         "tree needs at least 2 (set val_size: 0)")
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    val_idx: set[int] = set()
    taken = 0
    for key in order:
        if len(val_idx) >= want or taken == len(groups) - 1:  # keep at least one tree for training
            break
        val_idx.update(groups[key])
        taken += 1
    train = [r for i, r in enumerate(records) if i not in val_idx]
    val = [r for i, r in enumerate(records) if i in val_idx]
    return Split(train, val, taken, len(groups))
