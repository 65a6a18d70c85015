"""`extract:` config section."""

from __future__ import annotations

from typing import Literal

from escpro import paper_defaults as P
from escpro.config_base import Section


class ExtractConfig(Section):
    theta: float = P.THETA.value
    rule: Literal["paper", "reference"] = "paper"
    reference_min_n: int = P.REFERENCE_MIN_N.value
