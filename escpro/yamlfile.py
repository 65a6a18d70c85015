"""Reading config-like files safely (YAML size and alias expansion bounded) and turning
validation errors into one line; the foundation every file-reading layer uses, kept apart from
escpro/config.py (which composes the stage sections and so sits above them)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from escpro.errors import ConfigError


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
    """Every problem as 'source: key.path: message; key.path: message' (escpro/fileformat.py)."""
    from escpro.fileformat import problems_message

    return problems_message(source, exc)


# A config is a few KB; these bounds stop a hostile or broken file (a YAML "billion laughs" alias
# bomb loads as a few shared objects that expand to gigabytes once validated or copied) quickly.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 100_000


def count_nodes(data: Any, limit: int = MAX_CONFIG_NODES) -> int:
    """Values in a loaded document, counting every alias use (stops just past `limit`)."""
    seen = 0
    stack = [data]
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return seen
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return seen


def load_yaml_bounded(p: Path, what: str = "config file") -> Any:
    """yaml.safe_load of a file with its size and its alias expansion bounded (one-line errors)."""
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ConfigError(f"{p}: {what} not found") from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: {size} bytes; a {what} is at most {MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}): not a {what}") from None
    except RecursionError:
        raise ConfigError(f"{p}: nested too deeply: not a {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if count_nodes(data) > MAX_CONFIG_NODES:
        raise ConfigError(f"{p}: expands to more than {MAX_CONFIG_NODES} values (YAML aliases?); "
                          f"not a {what}")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    data = load_yaml_bounded(p)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: (top level): a mapping of sections is required")
    return data
