"""`extract:` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from escpro import paper_defaults as P
from escpro.config_base import SEED_MAX, Section


class ExtractConfig(Section):
    theta: float = Field(P.THETA.value, description="Q threshold of valid paths and rejected siblings")
    rule: Literal["paper", "reference"] = Field(
        "paper", description="paper: every node on the path has Q >= theta; reference: only the end node, with N >= reference_min_n"
    )
    reference_min_n: int = Field(P.REFERENCE_MIN_N.value, ge=0)
    include_unfinished: bool = Field(False, description="also extract trees whose status is not 'done'")
    llamafactory_prefix: str = Field("escpro", min_length=1, description="dataset name prefix in dataset_info.json")
    random_seed: int = Field(0, ge=0, le=SEED_MAX, description="seed of the strategy draw in --ablation random")
