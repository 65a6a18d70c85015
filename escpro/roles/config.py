"""`roles:` config section: which backend and model plays each role, and the role math."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from escpro import paper_defaults as P
from escpro.config_base import Section

Backend = Literal["openai", "transformers", "llamacpp", "vllm-offline", "sim"]


class RoleBinding(Section):
    backend: Backend = "sim"
    model: str = "sim"
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float = 0.7
    max_tokens: int = 256


class RolesConfig(Section):
    seeker: RoleBinding = Field(default_factory=RoleBinding)
    supporter: RoleBinding = Field(default_factory=RoleBinding)
    strategy: RoleBinding = Field(default_factory=lambda: RoleBinding(temperature=0.0, max_tokens=200))
    reward: RoleBinding = Field(default_factory=lambda: RoleBinding(temperature=0.0, max_tokens=120))
    prior_temperature: float = Field(P.PRIOR_TEMPERATURE.value, gt=0)
    reward_alpha: float = P.REWARD_ALPHA.value
    reward_bias: float = P.REWARD_BIAS.value
    max_retries: int = Field(2, ge=0, le=10)
    timeout_s: float = Field(120.0, gt=0)
