"""`build:` config section: the search's numbers (defaults from escpro.paper_defaults)."""

from __future__ import annotations

from pydantic import Field

from escpro import paper_defaults as P
from escpro.config_base import Section


class BuildConfig(Section):
    c: float = Field(P.PUCB_C.value, ge=0)
    sim_max_rounds: int = Field(P.SIM_MAX_ROUNDS.value, ge=0)
    gold_q: float = P.GOLD_Q.value
    gold_n: int = Field(P.GOLD_N.value, ge=0)
    min_iterations: int = Field(P.MIN_ITERATIONS.value, ge=0)
    max_iterations: int = Field(P.MAX_ITERATIONS.value, ge=1)
    min_end_nodes: int = Field(P.MIN_END_NODES.value, ge=0)
    max_end_nodes: int = Field(P.MAX_END_NODES.value, ge=1)
    concurrent_trees: int = Field(64, ge=1)
    reuse_answers: bool = True
    taxonomy: str = "cso8"
