"""`train:` config section (importing it must not import torch)."""

from __future__ import annotations

from typing import Literal

from escpro.config_base import Section


class TrainConfig(Section):
    method: Literal["sft", "dpo", "ipo", "simpo", "kto", "orpo"] = "dpo"
    mode: Literal["lora", "full"] = "lora"
    model: str | None = None
