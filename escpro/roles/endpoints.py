"""The endpoints file written by `escpro serve` and read by `escpro build/eval --endpoints`.

Shape (JSON or YAML): {role: {base_url, model, api_key_env}} for any of the four roles (plus
optional `structured`: "vllm" | "response_format" | "none", `api`: "chat" | "completions", and
`max_model_len`, the server's context length). `base_url` may be a list: replicas of one model,
which the client balances (escpro.roles.backends.replicas). Roles it names are switched to the
`openai` backend at that endpoint; other roles keep their configured binding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from escpro.config import format_validation_error
from escpro.errors import ConfigError
from escpro.roles.base import ROLES
from escpro.roles.config import RolesConfig

ENDPOINT_KEYS = {"base_url", "model", "api_key_env", "structured", "api", "max_model_len"}


def load_endpoints(path: str | Path) -> dict[str, dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: endpoints file not found (write one with `escpro serve --endpoints-out`)")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: not valid JSON/YAML ({str(exc).splitlines()[0]})") from None
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
        urls = ep.get("base_url")
        if isinstance(urls, list) and urls and all(isinstance(u, str) and u for u in urls):
            pass
        elif not isinstance(urls, str) or not urls:
            raise ConfigError(f"{p}: {role}.base_url: a non-empty string (or list of them) is required")
        if not isinstance(ep.get("model"), str) or not ep["model"]:
            raise ConfigError(f"{p}: {role}.model: a non-empty string is required")
        n = ep.get("max_model_len")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ConfigError(f"{p}: {role}.max_model_len: a positive integer is required")
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
        urls = ep["base_url"] if isinstance(ep["base_url"], list) else [ep["base_url"]]
        upd = {"backend": "openai", "base_url": urls[0], "replica_urls": urls[1:], "model": ep["model"]}
        upd["api_key_env"] = ep.get("api_key_env")
        for key in ("structured", "api", "max_model_len"):
            if ep.get(key):
                upd[key] = ep[key]
        try:
            updates[role] = type(b).model_validate({**b.model_dump(), **upd})
        except ValidationError as exc:
            raise ConfigError(format_validation_error(f"{path}: {role}", exc)) from None
    return cfg.model_copy(update=updates)
