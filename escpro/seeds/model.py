"""The normalised seed dialogue every later stage reads.

Loaders (escpro.seeds.load) turn ExTES, ESConv and canonical JSONL into these; the MCTS builds a
tree's gold path from `turns`, evaluation turns them into test items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Speaker = Literal["seeker", "supporter"]


@dataclass(frozen=True)
class Turn:
    """One utterance after normalisation (consecutive turns of one speaker already merged).

    `strategy` is the taxonomy's canonical name (supporter turns only). `context_only` marks a
    supporter turn that is dialogue context but never a gold node or evaluation item: a turn
    before the first seeker turn, or a greeting with an empty strategy.
    """

    speaker: Speaker
    text: str
    strategy: str | None = None
    context_only: bool = False


@dataclass(frozen=True)
class Dialogue:
    """A seed dialogue: scene (problem type), situation (the seeker's description), turns."""

    seed_id: str
    index: int
    scene: str
    situation: str
    turns: tuple[Turn, ...]
    source_format: str = "jsonl"
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def supporter_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.speaker == "supporter"]

    @property
    def gold_supporter_indices(self) -> list[int]:
        """Indices in `turns` of supporter turns that are gold (strategy-labelled, not context)."""
        return [
            i
            for i, t in enumerate(self.turns)
            if t.speaker == "supporter" and not t.context_only and t.strategy
        ]

    def to_record(self) -> dict:
        """The canonical JSONL record (what `escpro seeds convert` writes)."""
        return {
            "seed_id": self.seed_id,
            "scene": self.scene,
            "situation": self.situation,
            "turns": [
                {k: v for k, v in asdict(t).items() if v not in (None, False)} for t in self.turns
            ],
            **({"meta": self.meta} if self.meta else {}),
        }
