"""Seed dialogues: one Dialogue model for ExTES, ESConv and escpro's canonical JSONL."""

from escpro.dialogue import Utterance
from escpro.seeds.model import Dialogue

__all__ = ["Dialogue", "Utterance"]
