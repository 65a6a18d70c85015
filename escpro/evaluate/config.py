"""`eval:` config section: the model under test, decoding, baseline and batching.

Flags of `escpro eval run` override these; the resolved section is saved in the run directory.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from escpro.config_base import Section
from escpro.roles.config import RoleBinding

Baseline = Literal["none", "direct-refine", "self-refine", "example"]


def _default_model() -> RoleBinding:
    # Deterministic decoding by default: greedy, so a run is repeatable.
    return RoleBinding(backend="transformers", model="", temperature=0.0, max_tokens=256)


class EvalConfig(Section):
    taxonomy: str = "cso8"
    max_new_tokens: int = Field(256, ge=1, description="reply length limit (each stage)")
    model: RoleBinding = Field(
        default_factory=_default_model,
        description="the model under test (any role backend); --model/--adapter/--backend override",
    )
    baseline: Baseline = Field("none", description="decoding baseline (paper Appendix E)")
    examples: str | None = Field(
        None, description="seed file the `example` baseline draws its one example from"
    )
    seed: int = Field(0, description="example choice and sampling seed")
    chunk_size: int = Field(
        256, ge=1, description="requests handed to the backend at once (progress + checkpoint unit)"
    )
    feedback_max_tokens: int = Field(256, ge=1, description="Self-Refine feedback length limit")
    bootstrap: int = Field(0, ge=0, description="bootstrap resamples for scores.json intervals (0 = none)")
    rouge_stem: bool = Field(False, description="Porter-stem words for ROUGE-L (paper: no)")
