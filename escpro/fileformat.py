"""One way to validate a file escpro reads: a pydantic model, and one error naming every problem.

Taxonomies, prompt templates, the endpoints file (and the config, escpro/config.py) are pydantic
models. A bad file gives ONE line naming the file and, for each problem, the key path and what is
wrong, all problems at once, so a user fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from escpro.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def problem(err: Mapping[str, Any], unknown: str = "unknown key") -> str:
    """'key.path: message' for one pydantic error, in escpro's words (`unknown` for a key the
    format does not have)."""
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = unknown
    elif err["type"] in ("model_type", "dict_type"):
        msg = "a mapping is required"
    elif err["type"] == "missing":
        msg = "required key missing"
    elif err["type"] in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if not loc:  # a check across keys names its keys itself
            return msg
    return f"{loc or '(top level)'}: {msg}"


def problems_message(source: str | Path, exc: ValidationError, unknown: str = "unknown key") -> str:
    """'source: k1: m1; k2: m2' with every problem of `exc` (one line, however many)."""
    seen: list[str] = []
    for err in exc.errors():
        p = problem(err, unknown if len(err["loc"]) == 1 else "unknown key")
        if p not in seen:
            seen.append(p)
    return f"{source}: " + "; ".join(seen)


def validate_file(model: type[M], data: Any, source: str | Path, *,
                  context: dict[str, Any] | None = None, unknown_top: str = "unknown key") -> M:
    """`data` (parsed from `source`) as `model`; ConfigError listing every problem otherwise.
    `unknown_top` names what an unknown top-level key is (e.g. an unknown role)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(problems_message(source, exc, unknown=unknown_top)) from None
