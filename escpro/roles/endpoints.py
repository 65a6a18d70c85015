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
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from escpro import atomic
from escpro.errors import ConfigError
from escpro.fileformat import validate_file
from escpro.roles.base import ROLES
from escpro.roles.config import RolesConfig
from escpro.yamlfile import format_validation_error, load_bounded


def _check_url(v: str) -> str:
    u = urlsplit(v)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"{v!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:8000/v1)")
    try:
        port = u.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{v!r}: the port must be between 1 and 65535")
    return v


class Endpoint(BaseModel):
    """One role's entry; validated when the file is read, so a typo fails at once (a base_url
    that is not an http(s) URL with a valid port would otherwise be retried for a minute).
    `base_url` may be a list: replicas of one model, balanced by roles/backends/replicas.py."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | list[str]
    model: str
    api_key_env: str | None = None
    structured: Literal["vllm", "response_format", "none"] | None = None
    api: Literal["chat", "completions"] | None = None
    max_model_len: int | None = Field(default=None, ge=1, strict=True)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a non-empty string is required")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            if not v:
                raise ValueError("a non-empty list of URLs (replicas) is required")
            return [_check_url(u) for u in v]
        return _check_url(v)


class EndpointsFile(BaseModel):
    """The whole file: one optional entry per role, at least one; any other top-level key is an
    unknown role."""

    model_config = ConfigDict(extra="forbid")
    seeker: Endpoint | None = None
    supporter: Endpoint | None = None
    strategy: Endpoint | None = None
    reward: Endpoint | None = None

    @model_validator(mode="after")
    def _some(self) -> EndpointsFile:
        if not self.roles():
            raise ValueError(f"a mapping {{role: {{base_url, model, api_key_env}}}} is required (roles: {', '.join(ROLES)})")
        return self

    def roles(self) -> dict[str, Endpoint]:
        return {r: ep for r in ROLES if (ep := getattr(self, r)) is not None}


def load_endpoints(path: str | Path) -> dict[str, dict[str, Any]]:
    """{role: endpoint} of an endpoints file; ConfigError naming the file and every bad key."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: endpoints file not found (write one with `escpro serve --endpoints-out`)")
    data = load_bounded(p, "endpoints file")
    parsed = validate_file(EndpointsFile, data, p, unknown_top=f"unknown role (use {', '.join(ROLES)})")
    return {role: ep.model_dump(exclude_none=True) for role, ep in parsed.roles().items()}


def write_endpoints(path: str | Path, endpoints: dict[str, dict[str, Any]]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(p, json.dumps(endpoints, indent=2) + "\n")


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
