"""Which backend and model plays each role of a build: chosen, recorded with the run, reused.

The simulator is never a default: a build names its roles (`roles.<role>.backend` in the config,
`--endpoints`, or `--backend`) or stops with one line saying how. Every run records its roles
(the whole binding: backend, model, base URL, structured mode, ...; an API key is only ever the
NAME of the environment variable holding it). `--resume` reuses the recorded roles for every role
the command line and config leave open, and refuses a role that differs from the record in what
identifies the model (IDENTITY) -- a tree half built by one model and finished by another is
neither model's tree. Moving a role to another server with `--endpoints` is allowed with
`--allow-role-change` (the change is recorded with the run); switching between the simulator and
a model never is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from escpro.errors import ConfigError, EscproError
from escpro.roles.base import ROLES
from escpro.roles.config import RoleBinding, RolesConfig, is_simulator
from escpro.roles.endpoints import apply_endpoints, load_endpoints

IDENTITY = ("backend", "model", "base_url", "structured", "api", "adapter", "gguf_file")
HOW = ("give them with --endpoints FILE (written by `escpro serve`), roles.<role>.backend in "
       "--config, or --backend NAME (--backend sim: the simulator, for tests and plans)")


class RoleChoiceError(EscproError):
    pass


@dataclass(frozen=True)
class RoleChoice:
    roles: RolesConfig  # what the build runs
    record: dict[str, dict]  # role -> binding, stored in runs.roles
    change: dict | None = None  # the allowed differences from the recorded roles (runs.role_change)


def requested(cfg: RolesConfig, backend: str | None, endpoints: Path | None) -> RolesConfig:
    """The config's roles with --endpoints, then --backend, applied."""
    if endpoints is not None:
        cfg = apply_endpoints(cfg, endpoints)
    if backend is not None:
        cfg = cfg.model_copy(update={
            r: RoleBinding.model_validate({**cfg.binding(r).model_dump(), "backend": backend})
            for r in ROLES})
    return cfg


def record(cfg: RolesConfig) -> dict[str, dict]:
    return {r: cfg.binding(r).model_dump(mode="json") for r in ROLES}


def identity(binding: dict) -> dict:
    return {k: binding.get(k) for k in IDENTITY}


def differences(old: dict[str, dict], new: dict[str, dict]) -> list[tuple[str, str]]:
    """(role, 'role.key was A, now B') for every identity key that differs."""
    out = []
    for r in ROLES:
        o, n = identity(old.get(r) or {}), identity(new.get(r) or {})
        out += [(r, f"{r}.{k} was {o[k]!r}, now {n[k]!r}") for k in IDENTITY if o[k] != n[k]]
    return out


def choose_roles(
    cfg: RolesConfig,
    *,
    backend: str | None,
    endpoints: Path | None,
    recorded: dict[str, dict] | None,
    allow_change: bool = False,
    db: Path | None = None,
) -> RoleChoice:
    """The roles of a new build (recorded=None) or of a resumed one (recorded = the run's)."""
    if allow_change and (recorded is None or endpoints is None):
        raise ConfigError("--allow-role-change: only with --resume and --endpoints (moving roles "
                          "of a recorded build to other servers)")
    asked = requested(cfg, backend, endpoints)
    if recorded is None:
        missing = [r for r in ROLES if asked.binding(r).backend is None]
        if missing:
            which = "no role has a backend" if len(missing) == len(ROLES) else \
                f"no backend for the {', '.join(missing)} role{'s' if len(missing) > 1 else ''}"
            raise RoleChoiceError(f"{which}: {HOW}")
        return RoleChoice(asked, record(asked))
    lacking = [r for r in ROLES if r not in recorded]
    if lacking:
        raise RoleChoiceError(f"{db}: the run did not record its {lacking[0]} role; the trees "
                              "must be rebuilt with this escpro")
    try:
        roles = asked.model_copy(update={
            r: asked.binding(r) if asked.binding(r).backend is not None
            else RoleBinding.model_validate(recorded[r])
            for r in ROLES})
    except ValidationError as exc:
        raise RoleChoiceError(f"{db}: the recorded roles cannot be read by this escpro "
                              f"({str(exc).splitlines()[0]}); give the roles explicitly") from None
    rec = record(roles)
    diff = differences(recorded, rec)
    if not diff:
        return RoleChoice(roles, rec)
    mixed = [r for r in ROLES if _sim(recorded[r]) != _sim(rec[r])]
    if mixed:
        r = mixed[0]
        raise RoleChoiceError(
            f"{db}: --resume would mix simulator and model answers in one tree ({r} was "
            f"{recorded[r].get('backend')}:{recorded[r].get('model')}, now "
            f"{rec[r]['backend']}:{rec[r]['model']}); resume with the recorded roles or build "
            "into another file")
    moved = set(load_endpoints(endpoints)) if endpoints is not None else set()
    if allow_change and all(r in moved for r, _ in diff):
        return RoleChoice(roles, rec, {"allowed_by": "--allow-role-change",
                                       "differences": [d for _, d in diff]})
    hint = (" or pass --allow-role-change to move them to these endpoints"
            if endpoints is not None and all(r in moved for r, _ in diff) else "")
    raise RoleChoiceError(
        f"{db}: --resume asks for other roles than the run recorded: "
        f"{'; '.join(d for _, d in diff[:4])}{' ...' if len(diff) > 4 else ''} (resume without "
        f"--backend/--endpoints/config roles to reuse the recorded ones{hint})")


def _sim(binding: dict) -> bool:
    return is_simulator(binding.get("backend"), binding.get("model"))


def latest_record(runs: list[dict]) -> dict[str, dict] | None:
    """The roles the most recent run recorded (runs in start order)."""
    for r in reversed(runs):
        roles = r.get("roles")
        if isinstance(roles, dict) and roles:
            return roles
    return None
