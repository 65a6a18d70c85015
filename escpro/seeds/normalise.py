"""The seed policy, in one place, so that counts are unambiguous (issue 2's rules).

1. Empty text turns are dropped.
2. Consecutive turns of one speaker are merged (texts joined by a space); a merged supporter turn
   keeps its first strategy and counts as `merged_mixed_strategy` when the strategies differed.
3. Supporter turns before the first seeker turn, and the first supporter turn when its strategy is
   empty (a greeting), are context only: never a gold node or an evaluation item.
4. The dialogue is dropped when a later supporter turn has no strategy (`missing_strategy`) or one
   the taxonomy does not know (`unknown_strategy`; "Others" counts as unknown where the taxonomy
   lacks it), when it has no seeker turn (`no_seeker_turn`) or no gold supporter turn
   (`no_supporter_turn`).
"""

from __future__ import annotations

from dataclasses import dataclass

from escpro.dialogue import Utterance
from escpro.seeds.formats import RawRecord, RawTurn, RecordDrop
from escpro.seeds.model import Dialogue
from escpro.taxonomy import Taxonomy, normalise_label


@dataclass
class Normalised:
    dialogue: Dialogue
    merged_mixed_strategy: int


def merge_turns(turns: list[RawTurn], taxonomy: Taxonomy) -> tuple[list[RawTurn], int]:
    """Drop empty turns, merge runs of one speaker; return the turns and the count of merged
    supporter turns whose strategies differed (compared after the taxonomy's mapping, so two
    ExTES labels that map to one strategy are not mixed)."""

    def key(label: str) -> str:
        return taxonomy.canonical(label) or normalise_label(label)

    out: list[RawTurn] = []
    labels: list[set[str]] = []
    for t in turns:
        text = " ".join(t.text.split())
        if not text:
            continue
        if out and out[-1].speaker == t.speaker:
            prev = out[-1]
            out[-1] = RawTurn(prev.speaker, f"{prev.text} {text}", prev.label, prev.context_only)
            if t.label:
                labels[-1].add(key(t.label))
        else:
            out.append(RawTurn(t.speaker, text, t.label, t.context_only))
            labels.append({key(t.label)} if t.label else set())
    mixed = sum(
        1 for t, ls in zip(out, labels, strict=True) if t.speaker == "supporter" and len(ls) > 1
    )
    return out, mixed


def normalise(record: RawRecord, taxonomy: Taxonomy, source_format: str) -> Normalised:
    """A Dialogue under the policy above, or RecordDrop(reason)."""
    turns, mixed = merge_turns(record.turns, taxonomy)
    if not any(t.speaker == "seeker" for t in turns):
        raise RecordDrop("no_seeker_turn")
    out: list[Utterance] = []
    seen_seeker = False
    first_supporter = True
    for t in turns:
        if t.speaker == "seeker":
            seen_seeker = True
            out.append(Utterance("seeker", t.text))
            continue
        canon = taxonomy.canonical(t.label)
        context = t.context_only or not seen_seeker or (first_supporter and not t.label)
        first_supporter = False
        if context:
            out.append(Utterance("supporter", t.text, canon, context_only=True))
            continue
        if not t.label:
            raise RecordDrop("missing_strategy")
        if canon is None:
            raise RecordDrop("unknown_strategy", t.label)
        out.append(Utterance("supporter", t.text, canon))
    if not any(t.speaker == "supporter" and not t.context_only for t in out):
        raise RecordDrop("no_supporter_turn")
    dialogue = Dialogue(
        seed_id=record.seed_id,
        index=record.index,
        scene=record.scene,
        situation=record.situation,
        turns=tuple(out),
        source_format=source_format,
        meta=record.meta,
    )
    return Normalised(dialogue, mixed)
