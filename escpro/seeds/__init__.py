"""Seed dialogues: one Dialogue model for ExTES, ESConv and escpro's canonical JSONL."""

from escpro.seeds.model import Dialogue, Turn

__all__ = ["Dialogue", "Turn"]
