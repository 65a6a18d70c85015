"""One config file = one YAML document with optional sections roles/build/extract/train/eval.

Each section's model lives beside the code it configures (escpro/<area>/config.py); this module
composes them, merges command-line overrides, and turns validation errors into
"file: key.path: what is wrong" lines.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from escpro.config_base import Section
from escpro.errors import ConfigError
from escpro.evaluate.config import EvalConfig
from escpro.extract.config import ExtractConfig
from escpro.mcts.config import BuildConfig
from escpro.roles.config import RolesConfig
from escpro.train.config import TrainConfig


class AppConfig(Section):
    roles: RolesConfig = Field(default_factory=RolesConfig)
    build: BuildConfig = Field(default_factory=BuildConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge override into a copy of base (override wins; None values are skipped)."""
    out = copy.deepcopy(base)
    for key, val in override.items():
        if val is None:
            continue
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], val)
        else:
            out[key] = val
    return out


def format_validation_error(source: str, exc: ValidationError) -> str:
    """First error as 'source: key.path: message' (plus a count of the others)."""
    errors = exc.errors()
    lines = []
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {loc}: {msg}")
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return lines[0] + more


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: (top level): a mapping of sections is required")
    return data


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
