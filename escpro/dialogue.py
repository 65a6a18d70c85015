"""escpro's one dialogue vocabulary: the utterance every stage trades, and how stored tree nodes
become dialogue turns.

A seed dialogue (escpro.seeds), the context a role sees (escpro.roles.api.DialogueContext), an
evaluation item's context (escpro.evaluate.testsets) and an extracted training dialogue
(escpro.extract) are all sequences of `Utterance`. `gold_split` and `node_turns` are the single
definition of what a tree path means as dialogue: the build's contexts (escpro.mcts.world, also
after a resume) and extraction's prompts (escpro.extract.tree) both call them, so a training
prompt is by construction the context the Supporter role saw during the build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Speaker = Literal["seeker", "supporter"]


@dataclass(frozen=True)
class Utterance:
    """One turn of a dialogue.

    `strategy` is the taxonomy's canonical name (supporter turns only; None when unknown or not
    labelled). `context_only` marks a seed's supporter turn that is dialogue context but never a
    gold node or evaluation item: a turn before the first seeker turn, or a greeting with an
    empty strategy.
    """

    speaker: Speaker
    text: str
    strategy: str | None = None
    context_only: bool = False

    def plain(self) -> Utterance:
        """The turn as the roles see it: no seed bookkeeping, no strategy on a seeker turn."""
        strategy = self.strategy if self.speaker == "supporter" else None
        if strategy == self.strategy and not self.context_only:
            return self
        return Utterance(self.speaker, self.text, strategy)


def gold_indices(turns: Sequence[Utterance]) -> list[int]:
    """Indices of a seed's gold supporter turns (strategy-labelled, not context): the turns that
    become the gold nodes of its tree, in order."""
    return [
        i for i, t in enumerate(turns)
        if t.speaker == "supporter" and not t.context_only and t.strategy
    ]


@dataclass(frozen=True)
class GoldSplit:
    """A seed seen as a tree's gold path: the root's context (everything before the first gold
    supporter turn) and, per gold turn, the turn and the seed's turns after it up to the next."""

    root_history: tuple[Utterance, ...]
    turns: tuple[Utterance, ...]
    tails: tuple[tuple[Utterance, ...], ...]


def gold_split(turns: Sequence[Utterance]) -> GoldSplit | None:
    """Split a seed into root context and gold turns (None without a gold turn). Every utterance
    is `plain()`: context-only turns stay dialogue but never become gold nodes."""
    gold = gold_indices(turns)
    if not gold:
        return None
    root = tuple(t.plain() for t in turns[: gold[0]])
    tails = []
    for k, gi in enumerate(gold):
        end = gold[k + 1] if k + 1 < len(gold) else len(turns)
        tails.append(tuple(t.plain() for t in turns[gi + 1 : end]))
    return GoldSplit(root, tuple(turns[gi].plain() for gi in gold), tuple(tails))


def node_turns(
    strategy: str | None,
    supporter_text: str | None,
    seeker_text: str | None,
    ended: bool,
    gold_tail: Sequence[Utterance] | None = None,
) -> tuple[Utterance, ...]:
    """What one tree node adds to the dialogue: its supporter turn, then the seeker's reply (a gold
    node: the seed's turns up to the next gold turn, `gold_tail`). An end node whose seeker only
    ended the dialogue adds no seeker turn."""
    sup = Utterance("supporter", supporter_text or "", strategy)
    if gold_tail is not None:
        return (sup, *gold_tail)
    if seeker_text or not ended:
        return (sup, Utterance("seeker", seeker_text or ""))
    return (sup,)
