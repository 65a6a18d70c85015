"""Statistics of seeds and ESC-Pro (the paper's Table 5), strategy use by dialogue stage, and
per-tree search figures. Pure functions over Tree objects; escpro.commands.stats does the I/O.

Counting (Table 5): an ESC-Pro dialogue is one valid path, counted as the paper counts it
(`counted_turns`): from the first seeker turn to the last supporter turn. The opening greeting
is not a preferred utterance and the seeker's closing words after the end node's supporter turn
are not a seeker utterance: the paper's equal seeker and preferred counts (3,113 each) show that
neither was counted, and the authors' build_data.py drops both. Seeker and preferred utterances
are counted per dialogue; the non-preferred utterances of a dialogue are the rejected siblings of
its nodes, also counted per dialogue (a node shared by two valid paths counts in both, as the two
dialogues each carry it). The mean dialogue length counts seeker + preferred utterances, as the
paper's 14.72 = (3,113 + 3,113) / 423 does. Unique counts (each node once) are reported beside
them. The seed column counts every turn of the seed as stored. Words are whitespace-separated
tokens.

Stages (Figure 3 / 9): over the same counted dialogue, so its last utterance (i = n) is a
supporter turn and stage 1.0 holds the dialogue's last supporter turn; seeds are cut the same way.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass

from escpro import paper_defaults as P
from escpro.dialogue import Utterance
from escpro.extract.rules import TreeResult
from escpro.extract.tree import Tree, path_dialogue, seed_utterances
from escpro.taxonomy import Taxonomy

STAGE_DIVISIONS = int(P.STAGES.value)


def words(text: str | None) -> int:
    return len((text or "").split())


def stage_of(i: int, n: int) -> float:
    """Stage of utterance i (1-based) of n: floor(D * i / n) / D, D = STAGE_DIVISIONS."""
    if not 1 <= i <= n:
        raise ValueError(f"utterance {i} of {n}")
    return math.floor(STAGE_DIVISIONS * i / n) / STAGE_DIVISIONS


def stage_labels() -> list[float]:
    return [k / STAGE_DIVISIONS for k in range(STAGE_DIVISIONS + 1)]


@dataclass
class Column:
    """One column of Table 5."""

    dialogues: int | None = None
    utterances: int = 0
    words: int = 0

    def add(self, text: str | None) -> None:
        self.utterances += 1
        self.words += words(text)

    @property
    def mean_words(self) -> float | None:
        return self.words / self.utterances if self.utterances else None


def counted_turns(turns: list[Utterance]) -> list[Utterance]:
    """A dialogue as the paper counts it: from its first seeker turn (no opening greeting) to its
    last supporter turn (no closing words of the seeker)."""
    first = next((i for i, t in enumerate(turns) if t.speaker == "seeker"), len(turns))
    last = max((i for i, t in enumerate(turns) if t.speaker == "supporter"), default=-1)
    return list(turns[first : last + 1])


def esc_pro_dialogue(tree: Tree, node_ids: tuple[str, ...], taxonomy: Taxonomy | None) -> list[Utterance]:
    """One ESC-Pro dialogue (a valid path) as Table 5 and the stage plot count it."""
    return counted_turns(path_dialogue(tree, node_ids, taxonomy))


def _seed_dialogue(tree: Tree) -> list[Utterance]:
    return counted_turns([Utterance(u.speaker, u.text, None if u.context_only else u.strategy)
                          for u in seed_utterances(tree)])


def table5(trees: list[Tree], results: list[TreeResult], taxonomy: Taxonomy | None) -> dict:
    seeds = Column(dialogues=0)
    for tree in trees:
        turns = seed_utterances(tree)
        if not turns:
            continue
        seeds.dialogues += 1
        for t in turns:
            seeds.add(t.text)
    seeker, pref, nonpref = Column(), Column(), Column()
    uniq_pref: set[str] = set()
    uniq_rej: set[str] = set()
    dialogues = 0
    for tree, res in zip(trees, results, strict=True):
        rejected_of: dict[str, list[str]] = {}
        for p in res.pairs:
            rejected_of.setdefault(p.chosen_id, []).append(p.rejected_id)
        for path in res.paths:
            dialogues += 1
            for u in esc_pro_dialogue(tree, path.node_ids, taxonomy):
                (seeker if u.speaker == "seeker" else pref).add(u.text)
            for nid in path.node_ids:
                uniq_pref.add(nid)
                for rid in rejected_of.get(nid, []):
                    uniq_rej.add(rid)
                    nonpref.add(tree.node(rid).supporter_text)
    total_utts = seeker.utterances + pref.utterances + nonpref.utterances
    total_words = seeker.words + pref.words + nonpref.words
    return {
        "seed": {
            "dialogues": seeds.dialogues,
            "utterances": seeds.utterances,
            "mean_dialogue_length": seeds.utterances / seeds.dialogues if seeds.dialogues else None,
            "mean_utterance_words": seeds.mean_words,
        },
        "esc_pro_seeker": {"utterances": seeker.utterances, "mean_utterance_words": seeker.mean_words},
        "esc_pro_preferred": {"utterances": pref.utterances, "mean_utterance_words": pref.mean_words},
        "esc_pro_non_preferred": {"utterances": nonpref.utterances, "mean_utterance_words": nonpref.mean_words},
        "esc_pro": {
            "dialogues": dialogues,
            "utterances": total_utts,
            "mean_dialogue_length": (seeker.utterances + pref.utterances) / dialogues if dialogues else None,
            "mean_utterance_words": total_words / total_utts if total_utts else None,
        },
        "unique": {"preferred_nodes": len(uniq_pref), "non_preferred_nodes": len(uniq_rej)},
    }


def utterance_groups(trees: list[Tree], results: list[TreeResult], taxonomy: Taxonomy | None) -> dict[str, list[str]]:
    """The texts behind Table 5's columns, utterance by utterance (same units as `table5`), for
    per-utterance analyses such as toxicity (paper Table 7's rows)."""
    g: dict[str, list[str]] = {k: [] for k in (
        "seed_seeker", "seed_supporter", "esc_pro_seeker", "esc_pro_preferred", "esc_pro_non_preferred")}
    for tree, res in zip(trees, results, strict=True):
        for t in seed_utterances(tree):
            g["seed_seeker" if t.speaker == "seeker" else "seed_supporter"].append(t.text)
        rejected_of: dict[str, list[str]] = {}
        for p in res.pairs:
            rejected_of.setdefault(p.chosen_id, []).append(p.rejected_id)
        for path in res.paths:
            for u in esc_pro_dialogue(tree, path.node_ids, taxonomy):
                g["esc_pro_seeker" if u.speaker == "seeker" else "esc_pro_preferred"].append(u.text or "")
            for nid in path.node_ids:
                g["esc_pro_non_preferred"] += [tree.node(r).supporter_text or "" for r in rejected_of.get(nid, [])]
    return g


def stage_distribution(
    trees: list[Tree], results: list[TreeResult], taxonomy: Taxonomy | None, source: str = "esc_pro"
) -> Counter:
    """Counter over (stage, strategy) of supporter utterances with a strategy.

    source "esc_pro": every valid path; "seed": the seed dialogues' labelled supporter turns.
    Each dialogue is cut by `counted_turns`, so n ends at its last supporter turn.
    """
    counts: Counter = Counter()
    for tree, res in zip(trees, results, strict=True):
        if source == "seed":
            dialogues = [d for d in [_seed_dialogue(tree)] if d]
        else:
            dialogues = [esc_pro_dialogue(tree, p.node_ids, taxonomy) for p in res.paths]
        for turns in dialogues:
            n = len(turns)
            for i, u in enumerate(turns, start=1):
                if u.speaker == "supporter" and u.strategy:
                    name = (taxonomy.canonical(u.strategy) if taxonomy else None) or u.strategy
                    counts[(stage_of(i, n), name)] += 1
    return counts


def stage_rows(counts: Counter, strategies: list[str], source: str) -> list[dict]:
    """CSV rows: one per (stage, strategy), with the share of the stage's supporter turns."""
    rows = []
    for stage in stage_labels():
        total = sum(c for (s, _), c in counts.items() if s == stage)
        names = strategies + sorted({k for (s, k) in counts if s == stage and k not in strategies})
        for name in names:
            c = counts.get((stage, name), 0)
            rows.append({"source": source, "stage": stage, "strategy": name, "count": c,
                         "share": c / total if total else 0.0})
    return rows


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"min": None, "p25": None, "median": None, "mean": None, "p75": None, "max": None}
    vs = sorted(values)
    qs = statistics.quantiles(vs, n=4, method="inclusive") if len(vs) > 1 else [vs[0]] * 3
    return {"min": vs[0], "p25": qs[0], "median": qs[1], "mean": statistics.fmean(vs), "p75": qs[2], "max": vs[-1]}


def tree_stats(tree: Tree, res: TreeResult, theta: float) -> dict:
    nodes = [n for n in tree.nodes.values() if not n.is_root]
    replied = [n for n in nodes if n.has_reply]
    qs = [n.q for n in replied if n.q is not None]
    kinds = Counter(n.kind for n in nodes)
    return {
        "tree_id": tree.tree_id,
        "status": tree.status,
        "iterations": tree.iterations,
        "nodes": len(nodes),
        "expanded": len(replied),
        "unexpanded": kinds.get("unexpanded", 0),
        "end_nodes": sum(1 for n in nodes if n.ended),
        "max_depth": max((len(tree.ancestry(n.node_id)) for n in nodes), default=0),
        "valid_paths": len(res.paths),
        "pairs": len(res.pairs),
        "q_at_least_theta": sum(1 for q in qs if q >= theta),
        **{f"q_{k}": v for k, v in _quantiles(qs).items()},
        "reason": res.reason,
    }


def all_q(trees: list[Tree]) -> list[float]:
    return [n.q for t in trees for n in t.nodes.values() if n.has_reply and n.q is not None]

