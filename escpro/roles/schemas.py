"""Structured outputs of the Strategy and Reward roles: enum JSON schemas and their validation.

Scores are written as enums (`{"type": "integer", "enum": [1, ..., 10]}`), never as ranges:
outlines_core silently ignores minimum/maximum (STACK_NOTES.md), while enums are honoured by
outlines_core, llguidance, xgrammar and vLLM. Every answer is validated here whatever the backend
did at decoding time: a truncated or out-of-range answer is an invalid call, never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from escpro import paper_defaults as P

REWARD_KEYS: tuple[str, ...] = ("empathy", "information", "humanoid", "strategy")


class SchemaError(ValueError):
    """An answer does not satisfy its schema (the message says where)."""


def enum_object_schema(keys: Sequence[str], lo: int, hi: int, title: str) -> dict[str, Any]:
    values = list(range(int(lo), int(hi) + 1))
    return {
        "title": title,
        "type": "object",
        "properties": {k: {"type": "integer", "enum": values} for k in keys},
        "required": list(keys),
        "additionalProperties": False,
    }


def strategy_schema(
    names: Sequence[str],
    lo: int = int(P.STRATEGY_SCORE_MIN.value),
    hi: int = int(P.STRATEGY_SCORE_MAX.value),
) -> dict[str, Any]:
    """One integer score per strategy name (the taxonomy's names, in its order)."""
    return enum_object_schema(names, lo, hi, "StrategyScores")


def reward_schema(
    lo: int = int(P.REWARD_SCORE_MIN.value), hi: int = int(P.REWARD_SCORE_MAX.value)
) -> dict[str, Any]:
    return enum_object_schema(REWARD_KEYS, lo, hi, "RewardScores")


def _check(value: Any, schema: Mapping[str, Any], where: str) -> None:
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: {value!r} is not one of {_short(schema['enum'])}")
    typ = schema.get("type")
    if typ == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        raise SchemaError(f"{where}: {value!r} is not an integer")
    if typ == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise SchemaError(f"{where}: {value!r} is not a number")
    if typ == "string" and not isinstance(value, str):
        raise SchemaError(f"{where}: {value!r} is not a string")
    if typ == "boolean" and not isinstance(value, bool):
        raise SchemaError(f"{where}: {value!r} is not a boolean")
    if "minimum" in schema and value < schema["minimum"]:
        raise SchemaError(f"{where}: {value!r} < minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise SchemaError(f"{where}: {value!r} > maximum {schema['maximum']}")
    if typ == "array":
        if not isinstance(value, list):
            raise SchemaError(f"{where}: not an array")
        for i, item in enumerate(value):
            _check(item, schema.get("items", {}), f"{where}[{i}]")
    if typ == "object":
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: not an object")
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                raise SchemaError(f"{where}: missing key {key!r}")
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in props]
            if extra:
                raise SchemaError(f"{where}: unexpected key {extra[0]!r}")
        for key, sub in props.items():
            if key in value:
                _check(value[key], sub, f"{where}.{key}" if where else key)


def _short(values: Sequence[Any]) -> str:
    vals = list(values)
    return f"{vals[0]}..{vals[-1]}" if len(vals) > 4 else str(vals)


def validate(value: Any, schema: Mapping[str, Any]) -> Any:
    """Check `value` against the subset of JSON schema escpro emits (type, enum, min/max,
    properties, required, additionalProperties, items); raise SchemaError on the first problem."""
    _check(value, schema, "")
    return value


def parse_json_answer(text: str | None, schema: Mapping[str, Any]) -> Any:
    """The answer text as a validated JSON value. Tolerates only surrounding whitespace and a
    Markdown code fence (servers without constrained decoding add them); anything else, including
    truncated JSON, raises SchemaError."""
    if text is None:
        raise SchemaError("empty answer")
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
        t = t.strip()
    if not t:
        raise SchemaError("empty answer")
    try:
        value = json.loads(t)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(t) - 1 or exc.msg.startswith("Unterminated")
        tail = "truncated JSON" if cut else "not JSON"
        raise SchemaError(f"{tail}: {exc.msg} at char {exc.pos}") from None
    return validate(value, schema)


def json_keys_hint(keys: Sequence[str]) -> str:
    return ", ".join(json.dumps(k) for k in keys)
