"""What `escpro ui` serves, as one typed value (the CLI only fills it in)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from escpro.errors import ConfigError, DataError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
TOKEN_ENV = "ESCPRO_UI_TOKEN"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


class UiOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db: Path | None = None  # the build's DuckDB file (opened read-only, per request)
    pairs: Path | None = None  # an `escpro extract --out` directory
    evals: tuple[Path, ...] = ()  # `escpro eval run --out` directories (two or more)
    judgements: Path | None = None  # the annotators' SQLite file (created when missing)
    testset: Path | None = None  # the eval runs' test set when it moved since `escpro eval run`
    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    token: str | None = None
    theta: float = 0.5  # valid-path threshold for the marks (as `escpro tree`)
    rule: str = "paper"
    reference_min_n: int = 2
    eval_items: int | None = Field(None, ge=1)  # judge only this many test items (sampled)
    eval_seed: int = 0  # order of the tasks and the item sample
    lock_timeout_s: float = 10.0

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


class NotFound(DataError):
    """A tree, node, pair or task that does not exist (HTTP 404; other input errors are 400)."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_options(opts: UiOptions) -> None:
    """Refuse what would expose the app or serve nothing (one-line errors)."""
    if not opts.loopback and not opts.token:
        raise ConfigError(
            f"--host {opts.host} is not a loopback address: pass --token (or set {TOKEN_ENV}) "
            "so that every request must carry it"
        )
    if opts.token is not None and len(opts.token) < 16:
        raise ConfigError("--token: use at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)")
    if opts.db is None and opts.pairs is None and not opts.evals:
        raise ConfigError("nothing to serve: give --db, --pairs and/or --evals")
    if opts.db is not None and not opts.db.is_file():
        raise ConfigError(f"--db {opts.db}: no such file")
    if opts.pairs is not None and not (opts.pairs / "pairs.jsonl").is_file():
        raise ConfigError(f"--pairs {opts.pairs}: no pairs.jsonl (an `escpro extract --out` directory)")
    if len(opts.evals) == 1:
        raise ConfigError("--evals: give two or more `escpro eval run` directories to compare")
    if opts.rule not in ("paper", "reference"):
        raise ConfigError(f"--rule {opts.rule}: use paper or reference")
