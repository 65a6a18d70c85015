"""One config file = one YAML document with optional sections roles/build/extract/train/eval.

Each section's model lives beside the code it configures (escpro/<area>/config.py); this module
composes them, merges command-line overrides, and turns validation errors into
"file: key.path: what is wrong" lines.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from escpro.config_base import Section
from escpro.errors import ConfigError
from escpro.evaluate.config import EvalConfig
from escpro.extract.config import ExtractConfig
from escpro.mcts.config import BuildConfig
from escpro.roles.config import RolesConfig
from escpro.train.config import TrainConfig
from escpro.yamlfile import deep_merge, format_validation_error, read_yaml


class AppConfig(Section):
    roles: RolesConfig = Field(default_factory=RolesConfig)
    build: BuildConfig = Field(default_factory=BuildConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _gold_q_is_a_reward(self) -> AppConfig:
        """Q is a mean of rewards, which lie in [b, b + 4]: a gold Q outside can never be one
        (the reference code's Q = 1 is the best reward, 4 + b)."""
        lo = self.roles.reward_bias
        hi = lo + 4.0
        if not lo <= self.build.gold_q <= hi:
            raise ValueError(
                f"build.gold_q = {self.build.gold_q:g} lies outside the reward range "
                f"[{lo:g}, {hi:g}] (roles.reward_bias + 0..4)"
            )
        return self


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> AppConfig:
    """The file (if any) with command-line overrides applied, validated."""
    data = read_yaml(path) if path else {}
    if overrides:
        data = deep_merge(data, overrides)
    source = str(path) if path else "command line"
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def dump_config(cfg: AppConfig) -> str:
    """The resolved config as YAML (saved with every output)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
