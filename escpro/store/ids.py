"""Deterministic TEXT ids (schema.py docstring): the same seed and path give the same id in every
run, shard and merged copy, so resume, shards and merge never collide."""

from __future__ import annotations

from functools import lru_cache


def tree_id(seeds_sha256: str, seed_index: int) -> str:
    """"<seeds sha256[:12]>-<seed index>"."""
    return f"{seeds_sha256[:12]}-{seed_index}"


@lru_cache(maxsize=1 << 16)
def node_id(tree: str, path: tuple[int, ...]) -> str:
    """"<tree_id>/r" for the root, "<tree_id>/r.0.3" for the child 3 of the root's child 0.
    (Cached: a build asks for the same node's id at every call and commit that touches it.)"""
    return f"{tree}/r" + "".join(f".{i}" for i in path)


def parse_node_path(nid: str) -> tuple[str, tuple[int, ...]]:
    """Inverse of node_id: (tree_id, path)."""
    tree, _, tail = nid.rpartition("/")
    if not tail.startswith("r"):
        raise ValueError(f"not a node id: {nid!r}")
    parts = [p for p in tail[1:].split(".") if p]
    return tree, tuple(int(p) for p in parts)


def call_id(tree: str, iteration: int, seq: int) -> str:
    """"<tree_id>:<iteration>:<n-th call of that iteration>": replaying an uncommitted iteration
    after a crash reproduces the same ids, so nothing is written twice."""
    return f"{tree}:{iteration}:{seq}"
