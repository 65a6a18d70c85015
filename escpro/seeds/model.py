"""The normalised seed dialogue every later stage reads.

Loaders (escpro.seeds.load) turn ExTES, ESConv and canonical JSONL into these; the MCTS builds a
tree's gold path from `turns`, evaluation turns them into test items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from escpro.dialogue import Utterance, gold_indices


@dataclass(frozen=True)
class Dialogue:
    """A seed dialogue: scene (problem type), situation (the seeker's description), turns
    (escpro.dialogue.Utterance, consecutive turns of one speaker already merged)."""

    seed_id: str
    index: int
    scene: str
    situation: str
    turns: tuple[Utterance, ...]
    source_format: str = "jsonl"
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def gold_supporter_indices(self) -> list[int]:
        """Indices in `turns` of supporter turns that are gold (strategy-labelled, not context)."""
        return gold_indices(self.turns)

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
