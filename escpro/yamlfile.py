"""Reading config-like files safely (one bounded JSON/YAML reader, `load_bounded`: size, nesting
and alias expansion bounded) and turning validation errors into one line; the foundation every file-reading layer uses, kept apart from
escpro/config.py (which composes the stage sections and so sits above them)."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from escpro.errors import ConfigError, EscproError


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
# bomb loads as a few shared objects that expand to gigabytes once validated or copied; a JSON
# array nested 100,000 deep overflows the parser's stack) quickly. One set of bounds for every
# config-like file escpro reads: configs, serving files, endpoints, taxonomies, prompt templates.
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


def _an(what: str) -> str:
    return f"an {what}" if what[:1].lower() in "aeiou" else f"a {what}"


def _kind(data: Any) -> str:
    """What a top level that is not a mapping is, in a user's words."""
    for types, name in (((list, tuple), "a list"), (str, "a string"), (bool, "a boolean"),
                        ((int, float), "a number")):
        if isinstance(data, types):
            return name
    return _an(type(data).__name__)


def _parse(p: Path, text: str, what: str, error: type[EscproError]) -> Any:
    """JSON for a `.json` file (its errors then say JSON); YAML for `.yaml`/`.yml`; a file named
    otherwise (e.g. `escpro score --json > scores.out`) is JSON when it reads as JSON, else YAML."""
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(text)
        if suffix not in (".yaml", ".yml") and text.lstrip("\ufeff \t\r\n").startswith(("{", "[")):
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(text)
        return yaml.safe_load(text)
    except RecursionError:
        raise error(f"{p}: nested too deeply: not {_an(what)}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except yaml.YAMLError as exc:
        raise error(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_bounded(path: str | Path, what: str = "config file", *,
                 error: type[EscproError] = ConfigError) -> Any:
    """The parsed contents of a JSON or YAML file (_parse tells which), refused with one line
    naming the file (`error`, ConfigError by default) when it is missing, over MAX_CONFIG_BYTES,
    not UTF-8, not parseable, nested past the parser's stack or expanding past MAX_CONFIG_NODES.
    The one reader of every small structured file a user hands escpro; the shape is the caller's
    pydantic model's business."""
    p = Path(path)
    return parse_bounded(p, read_bounded_text(p, what, error=error), what, error=error)


def read_bounded_text(path: str | Path, what: str = "config file", *,
                      error: type[EscproError] = ConfigError) -> str:
    """The text of a small structured file (the checks of load_bounded before parsing), for a
    caller that keeps the text itself too (a prompt template's hash in the run record)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    if p.is_dir():
        raise error(f"{p}: is a directory, not {_an(what)}")
    if size > MAX_CONFIG_BYTES:
        raise error(f"{p}: {size} bytes; {_an(what)} is at most {MAX_CONFIG_BYTES} bytes")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not UTF-8 text (byte {exc.start}): not {_an(what)}") from None


def parse_bounded(path: Path, text: str, what: str = "config file", *,
                  error: type[EscproError] = ConfigError) -> Any:
    """load_bounded's parse of text read by read_bounded_text."""
    data = _parse(path, text, what, error)
    if count_nodes(data) > MAX_CONFIG_NODES:
        raise error(f"{path}: holds or expands to more than {MAX_CONFIG_NODES} values (YAML aliases "
                    f"count at every use); not {_an(what)}")
    return data


def read_mapping(path: str | Path, what: str = "config file", *,
                 error: type[EscproError] = ConfigError) -> dict[str, Any]:
    """load_bounded of a file whose top level must be a mapping (an empty file is {})."""
    p = Path(path)
    data = load_bounded(p, what, error=error)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{p}: (top level): a mapping is required, not {_kind(data)}")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's sections ({} for an empty file)."""
    return read_mapping(path, "config file")
