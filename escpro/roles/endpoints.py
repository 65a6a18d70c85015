"""The endpoints file written by `escpro serve` and read by `escpro build/eval --endpoints`.

Shape (JSON or YAML): {role: {base_url, model, api_key_env}} for any of the four roles (plus
optional `structured`: "vllm" | "response_format" | "none"). Roles it names are switched to the
`openai` backend at that endpoint; other roles keep their configured binding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from escpro.errors import ConfigError
from escpro.roles.base import ROLES
from escpro.roles.config import RolesConfig

ENDPOINT_KEYS = {"base_url", "model", "api_key_env", "structured"}


def load_endpoints(path: str | Path) -> dict[str, dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: endpoints file not found (write one with `escpro serve --endpoints-out`)")
    if p.suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: not valid JSON ({str(exc).splitlines()[0]})") from None
    else:
        from escpro.config import load_yaml_bounded

        data = load_yaml_bounded(p, "endpoints file")
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{p}: a mapping {{role: {{base_url, model, api_key_env}}}} is required")
    out: dict[str, dict[str, Any]] = {}
    for role, ep in data.items():
        if role not in ROLES:
            raise ConfigError(f"{p}: {role}: unknown role (use {', '.join(ROLES)})")
        if not isinstance(ep, dict):
            raise ConfigError(f"{p}: {role}: a mapping with base_url and model is required")
        extra = set(ep) - ENDPOINT_KEYS
        if extra:
            raise ConfigError(f"{p}: {role}.{sorted(extra)[0]}: unknown key")
        for key in ("base_url", "model"):
            if not isinstance(ep.get(key), str) or not ep[key]:
                raise ConfigError(f"{p}: {role}.{key}: a non-empty string is required")
        out[role] = dict(ep)
    return out


def write_endpoints(path: str | Path, endpoints: dict[str, dict[str, Any]]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(endpoints, indent=2) + "\n", encoding="utf-8")
    tmp.replace(p)


def apply_endpoints(cfg: RolesConfig, path: str | Path) -> RolesConfig:
    eps = load_endpoints(path)
    updates = {}
    for role, ep in eps.items():
        b = cfg.binding(role)
        upd = {"backend": "openai", "base_url": ep["base_url"], "model": ep["model"]}
        upd["api_key_env"] = ep.get("api_key_env")
        if ep.get("structured"):
            upd["structured"] = ep["structured"]
        updates[role] = type(b).model_validate({**b.model_dump(), **upd})
    return cfg.model_copy(update=updates)
