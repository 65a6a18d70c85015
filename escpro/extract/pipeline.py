"""`escpro extract`: DuckDB trees -> ESC-Pro files + manifest (the I/O edge around rules.py)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from escpro import __version__
from escpro.atomic import sha256_file
from escpro.errors import ConfigError, EscproError
from escpro.extract.records import dedupe_pairs, dedupe_sft, pair_record, sft_record
from escpro.extract.rules import Rule, TreeResult, exclusion_summary, extract_tree
from escpro.extract.tree import Node, Tree
from escpro.roles.config import is_simulator
from escpro.store import reader as dbio
from escpro.taxonomy import Taxonomy, load_taxonomy


@dataclass
class Extraction:
    """Everything extracted from one database, before writing."""

    taxonomy: Taxonomy
    runs: list[dbio.RunInfo]
    trees: list[Tree] = field(default_factory=list)
    results: list[TreeResult] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # trees not extracted (status)
    sources: list[dict] = field(default_factory=list)  # backends/models that answered (llm_calls)
    run_roles: list[dict] = field(default_factory=list)  # roles each run recorded
    warnings: list[str] = field(default_factory=list)


class MixedSourcesError(EscproError):
    pass


def check_sources(ex: Extraction, db_path: Path, allow_sim: bool) -> None:
    """Simulator answers are canned text: a dataset never mixes them with a model's unless the
    user says so (--allow-sim), and then the manifest says it too. The simulator served over
    HTTP (`escpro serve --engine sim`, model 'sim') counts as the simulator."""
    sim = [s for s in ex.sources if is_simulator(s["backend"], s["model"])]
    real = [s for s in ex.sources  # '?': not recorded
            if not is_simulator(s["backend"], s["model"]) and s["backend"] != "?"]
    if sim and real:
        desc = (f"simulator: {sum(s['calls'] for s in sim)} calls"
                f"{' + the ablation' if any(s.get('ablation') for s in sim) else ''}; "
                f"{', '.join(sorted({s['backend'] + ':' + s['model'] for s in real}))}: "
                f"{sum(s['calls'] for s in real)} calls"
                f"{' + the ablation' if any(s.get('ablation') for s in real) else ''}")
        if not allow_sim:
            raise MixedSourcesError(
                f"{db_path}: the trees mix simulator and model answers ({desc}); pass --allow-sim "
                "to extract them anyway (flagged in manifest.json)")
        ex.warnings.append(f"mixed simulator and model answers ({desc}), extracted with --allow-sim")
    elif sim:
        ex.warnings.append("every answer comes from the simulator (backend sim): test data, "
                           "not a dataset to train on")


def resolve_taxonomy(runs: list[dbio.RunInfo], override: str | None) -> Taxonomy:
    if override:
        return load_taxonomy(override)
    names = sorted({r.taxonomy for r in runs if r.taxonomy})
    if len(names) > 1:
        raise ConfigError(
            f"the database holds runs with different taxonomies ({', '.join(names)}); pass --taxonomy"
        )
    return load_taxonomy(names[0] if names else "cso8")


def collect(
    db_path: Path,
    *,
    theta: float,
    rule: Rule,
    min_n: int,
    taxonomy: str | None = None,
    include_unfinished: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Extraction:
    with dbio.open_db(db_path) as con:
        runs = dbio.read_runs(con)
        tax = resolve_taxonomy(runs, taxonomy)
        ex = Extraction(tax, runs)
        for tree in load_trees(con):
            if progress:
                progress(1)
            if tree.status != "done" and not include_unfinished:
                ex.skipped.append(
                    {"tree_id": tree.tree_id, "reason": f"status {tree.status or 'unknown'} (use --include-unfinished)"}
                )
                continue
            ex.trees.append(tree)
            ex.results.append(extract_tree(tree, theta, rule, min_n))
        ex.sources = dbio.call_sources(con, [t.tree_id for t in ex.trees])
        ex.run_roles = dbio.read_run_roles(con)
    return ex


def build_records(ex: Extraction) -> tuple[list[dict], list[dict], dict]:
    """(pair records, sft records, duplicate counts)."""
    pairs, sft = [], []
    for tree, res in zip(ex.trees, ex.results, strict=True):
        pairs.extend(pair_record(tree, p, ex.taxonomy) for p in res.pairs)
        sft.extend(sft_record(tree, p, ex.taxonomy) for p in res.paths)
    pairs, pair_dups = dedupe_pairs(pairs)
    sft, sft_dups = dedupe_sft(sft)
    return pairs, sft, {"pairs": pair_dups, "sft": sft_dups}


def manifest(
    ex: Extraction,
    db_path: Path,
    *,
    theta: float,
    rule: Rule,
    min_n: int,
    counts: dict,
    written: dict,
    extra: dict | None = None,
) -> dict:
    per_tree = [
        {"tree_id": r.tree_id, "valid_paths": len(r.paths), "pairs": len(r.pairs), "reason": r.reason}
        for r in ex.results
        if r.reason
    ]
    return {
        "dataset": "ESC-Pro",
        "escpro_version": __version__,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "db": str(db_path),
        "db_sha256": sha256_file(db_path),
        "run_ids": [r.run_id for r in ex.runs],
        "run_id": ex.runs[0].run_id if len(ex.runs) == 1 else None,
        "taxonomy": ex.taxonomy.name,
        "strategies": ex.taxonomy.names,
        "rule": rule,
        "rule_text": (
            f"end node and every node on the path with Q >= {theta:g} (paper section 3.2)"
            if rule == "paper"
            else f"end node with Q >= {theta:g} and N >= {min_n} (authors' released code)"
        ),
        "theta": theta,
        "reference_min_n": min_n,
        "counts": counts,
        "excluded": exclusion_summary(ex.results),
        "sources": ex.sources,
        "run_roles": ex.run_roles,
        "warnings": ex.warnings,
        "trees_without_result": per_tree,
        "trees_skipped": ex.skipped,
        **(extra or {}),
        **written,
    }


def _node(d: dict) -> Node:
    return Node(
        node_id=d["node_id"], parent_id=d["parent_id"], depth=int(d["depth"] or 0),
        kind=str(d["kind"] or ""), strategy=d["strategy"], prior=d["prior"], q=d["q"], n=d["n"],
        supporter_text=d["supporter_text"], seeker_text=d["seeker_text"],
        is_end=bool(d["is_end"]), is_gold=bool(d["is_gold"]), child_index=d["child_index"],
    )


def load_trees(con, ids: list[str] | None = None) -> Iterator[Tree]:
    """Trees (with all their nodes) in tree_id order, from the store's reader; ids=None: all."""
    for t, nodes in dbio.tree_rows(con, ids):
        yield Tree(
            tree_id=t["tree_id"], nodes={n["node_id"]: _node(n) for n in nodes},
            run_id=t["run_id"], status=t["status"], scene=t["scene"] or "",
            situation=t["situation"] or "", iterations=t["iterations"],
            end_count=t["end_count"], seed=t["seed"],
        )


def load_tree(con, tree_id: str) -> Tree:
    for tree in load_trees(con, [tree_id]):
        return tree
    raise dbio.missing_tree(con, tree_id)
