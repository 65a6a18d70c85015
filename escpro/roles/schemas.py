"""Structured outputs of the Strategy and Reward roles: enum JSON schemas and their validation.

Scores are written as enums (`{"type": "integer", "enum": [1, ..., 10]}`), never as ranges:
outlines_core silently ignores minimum/maximum (STACK_NOTES.md), while enums are honoured by
outlines_core, llguidance, xgrammar and vLLM. Every answer is validated here whatever the backend
did at decoding time: a truncated or out-of-range answer is an invalid call, never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from escpro import paper_defaults as P

REWARD_KEYS: tuple[str, ...] = ("empathy", "information", "humanoid", "strategy")


class SchemaError(ValueError):
    """An answer does not satisfy its schema (the message says where)."""


class RoleSchema(dict):
    """The JSON schema sent to the engine (a plain dict to every backend and serializer), carrying
    the pydantic model it was generated from, which validates the answer."""

    model: type[BaseModel]


def _integer_only(v: Any) -> Any:
    # Literal[0, 1, ...] compares by equality, so True and 1.0 would pass as 1 (other types fail
    # the enum itself).
    if isinstance(v, (bool, float)):
        raise ValueError(f"{v!r} is not an integer")
    return v


@lru_cache(maxsize=64)
def score_model(keys: tuple[str, ...], lo: int, hi: int, title: str) -> type[BaseModel]:
    """A model with one required integer field per key, each an enum lo..hi; no other keys.
    Keys are aliases (strategy names have spaces), fields are positional names."""
    score = Annotated[Literal[tuple(range(int(lo), int(hi) + 1))], BeforeValidator(_integer_only)]  # type: ignore[valid-type]
    fields: dict[str, Any] = {f"k{i}": (score, Field(alias=k)) for i, k in enumerate(keys)}
    return create_model(title, __config__=ConfigDict(extra="forbid"), **fields)


def _engine_schema(model: type[BaseModel]) -> RoleSchema:
    """The model's JSON schema as engines take it: an enum per field (never minimum/maximum:
    outlines_core ignores ranges), required keys, additionalProperties false; no per-field titles."""
    js = model.model_json_schema()
    props = {k: {"type": "integer", "enum": v["enum"]} for k, v in js["properties"].items()}
    out = RoleSchema(title=js["title"], type="object", properties=props, required=js["required"],
                     additionalProperties=False)
    out.model = model
    return out


def enum_object_schema(keys: Sequence[str], lo: int, hi: int, title: str) -> RoleSchema:
    return _engine_schema(score_model(tuple(keys), int(lo), int(hi), title))


def strategy_schema(names: Sequence[str]) -> RoleSchema:
    """One integer score per strategy name (the taxonomy's names, in its order)."""
    return enum_object_schema(names, int(P.STRATEGY_SCORE_MIN.value), int(P.STRATEGY_SCORE_MAX.value),
                              "StrategyScores")


def reward_schema() -> RoleSchema:
    return enum_object_schema(REWARD_KEYS, int(P.REWARD_SCORE_MIN.value), int(P.REWARD_SCORE_MAX.value),
                              "RewardScores")


def model_for(schema: Mapping[str, Any]) -> type[BaseModel]:
    """The validating model of a schema: its own, or rebuilt from a plain dict of the same shape
    (a schema that crossed a process boundary as JSON)."""
    model = getattr(schema, "model", None)
    if model is not None:
        return model
    try:
        props = schema["properties"]
        enums = [p["enum"] for p in props.values()]
        lo, hi = min(enums[0]), max(enums[0])
        if any(e != list(range(lo, hi + 1)) for e in enums) or set(schema["required"]) != set(props):
            raise ValueError
    except (KeyError, TypeError, ValueError, IndexError):
        raise SchemaError("unsupported schema: escpro validates objects of integer enums") from None
    return score_model(tuple(props), lo, hi, str(schema.get("title", "Scores")))


def _short(values: Sequence[Any]) -> str:
    vals = list(values)
    return f"{vals[0]}..{vals[-1]}" if len(vals) > 4 else str(vals)


def _problem(err: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    key = ".".join(str(x) for x in err["loc"])
    kind = err["type"]
    if kind == "missing":
        return f"missing key {key!r}"
    if kind == "extra_forbidden":
        return f"unexpected key {key!r}"
    if kind == "literal_error":
        allowed = schema.get("properties", {}).get(key, {}).get("enum") or []
        return f"{key}: {err['input']!r} is not one of {_short(allowed)}"
    if kind == "model_type":
        return "not an object"
    return f"{key}: {err['msg'].removeprefix('Value error, ')}"


def validate(value: Any, schema: Mapping[str, Any]) -> Any:
    """Check `value` against the schema's pydantic model; SchemaError lists every problem."""
    try:
        model_for(schema).model_validate(value)
    except ValidationError as exc:
        raise SchemaError("; ".join(_problem(e, schema) for e in exc.errors())) from None
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
