"""Reading seed files into raw records, and raw records into raw turns, per source format.

Only file-level damage (unreadable bytes, bad JSON, JSON nested thousands deep, a wrong top-level
shape, an empty file) stops a load, with the file and record index named; a record of the wrong
shape becomes a RecordDrop with a reason, so one bad record never costs the rest of the file.
Text is decided on here, once: a field that should be text but is a number (NaN included) and
text holding a lone UTF-16 surrogate (a JSON "\\ud800" escape: no UTF-8 file or DuckDB column
can hold it) drop the record with a counted reason instead of surfacing later as '' or as a
crash while a build writes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escpro.errors import DataError

FORMATS = ("auto", "extes", "esconv", "jsonl")


@dataclass(frozen=True)
class RawTurn:
    speaker: str  # "seeker" | "supporter"
    text: str
    label: str | None = None  # the strategy label as written in the file
    context_only: bool = False


@dataclass(frozen=True)
class RawRecord:
    index: int
    seed_id: str
    scene: str
    situation: str
    turns: list[RawTurn]
    meta: dict


class RecordDrop(Exception):
    """A record that cannot be read; `reason` is a short snake_case key for the counts."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def checked_text(value: str, what: str = "text") -> str:
    """`value` if it can be written as UTF-8; a lone surrogate drops the record."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start:exc.end].encode("unicode_escape").decode("ascii")
        raise RecordDrop("invalid_unicode", f"{what} holds a lone UTF-16 surrogate ({bad})") from None
    return value


def iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Records of a .json list or a .jsonl file; fatal errors name the file and record index."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, a seed file was expected") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}): give a JSON or JSONL seed file") from None
    stripped = text.lstrip()
    if not stripped:
        raise DataError(f"{path}: empty file (no seed dialogues)")
    try:
        yield from _iter_records(path, text, stripped)
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply (thousands of levels): not a seed file") from None


def _iter_records(path: Path, text: str, stripped: str) -> Iterator[tuple[int, Any]]:
    if stripped.startswith("["):
        yield from _iter_json_list(path, text)
        return
    if path.suffix == ".json" and not stripped.startswith(("[", "{")):
        try:
            top = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: bad JSON ({exc.msg} at line {exc.lineno})") from None
        raise DataError(f"{path}: top level is a {type(top).__name__}; expected a list of dialogues")
    if stripped.startswith("{") and path.suffix == ".json":
        # A single JSON document that is not a list: a wrong top-level shape.
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: record 0: bad JSON ({exc.msg} at line {exc.lineno})") from None
        raise DataError(f"{path}: top level is an object; expected a list of dialogues (or JSONL)")
    index = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: record {index} (line {lineno}): bad JSON ({exc.msg}, column {exc.colno})"
            ) from None
        yield index, obj
        index += 1
    if index == 0 and stripped:
        raise DataError(f"{path}: no records found")


def _iter_json_list(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Decode a JSON list element by element, so an error can say which record is broken."""
    dec = json.JSONDecoder()
    pos = text.index("[") + 1
    n = len(text)
    index = 0

    def skip_ws(p: int) -> int:
        while p < n and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip_ws(pos)
    if pos < n and text[pos] == "]":
        return
    while True:
        pos = skip_ws(pos)
        try:
            obj, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            line = text.count("\n", 0, exc.pos) + 1
            raise DataError(f"{path}: record {index}: bad JSON ({exc.msg} at line {line})") from None
        yield index, obj
        index += 1
        pos = skip_ws(pos)
        if pos < n and text[pos] == ",":
            pos += 1
            continue
        if pos < n and text[pos] == "]":
            if skip_ws(pos + 1) != n:
                raise DataError(f"{path}: trailing data after the list of records")
            return
        raise DataError(f"{path}: record {index}: bad JSON (file ends or ',' missing after record {index - 1})")


def detect_format(first: Any, path: Path) -> str:
    if isinstance(first, dict):
        if "turns" in first:
            return "jsonl"
        if "dialog" in first:
            return "esconv"
        if "content" in first:
            return "extes"
    raise DataError(
        f"{path}: record 0: cannot tell the format (expected 'content' for ExTES, 'dialog' for "
        "ESConv or 'turns' for escpro JSONL); pass --format"
    )


def _text_of(value: Any) -> str:
    """A turn's text: a string, or a dict read through its text field."""
    if isinstance(value, str):
        return checked_text(value, "a turn's text")
    if isinstance(value, dict):
        for key in ("text", "content", "utterance"):
            if isinstance(value.get(key), str):
                return checked_text(value[key], "a turn's text")
    raise RecordDrop("bad_turn_text", f"expected text, got {_kind(value)}")


def _kind(value: Any) -> str:
    if isinstance(value, float) and value != value:
        return "NaN"
    return type(value).__name__


def _str_field(rec: dict, *keys: str) -> str:
    """The first of `keys` present: text (stripped), or '' when null or absent; any other value
    (a number, NaN) drops the record rather than silently becoming ''."""
    for key in keys:
        val = rec.get(key)
        if isinstance(val, str):
            return checked_text(val, f"'{key}'").strip()
        if val is not None:
            raise RecordDrop("bad_field", f"'{key}' is {_kind(val)}, not text")
    return ""


def _checked_meta(meta: dict) -> dict:
    """Metadata travels as JSON into the store: no NaN, no lone surrogate, no cycles."""
    try:
        json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RecordDrop("invalid_unicode", "'meta' holds a lone UTF-16 surrogate") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise RecordDrop("bad_field", f"'meta' is not plain JSON ({exc})") from None
    return meta


def _seed_id(rec: dict, key: str, index: int) -> str:
    val = rec.get(key, index)
    if isinstance(val, float) and val != val:
        raise RecordDrop("bad_field", f"'{key}' is NaN")
    return checked_text(str(val), f"'{key}'")


def _label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return checked_text(value, "a strategy label").strip() or None
    if isinstance(value, dict):
        return _label(value.get("strategy"))
    raise RecordDrop("bad_strategy_field", f"strategy is {type(value).__name__}")


def extes_record(index: int, rec: Any) -> RawRecord:
    """{"scene", "description", "content": [{"User": str} | {"AI Strategy": str, "AI": str}]}."""
    if not isinstance(rec, dict) or not isinstance(rec.get("content"), list):
        raise RecordDrop("bad_record", "expected an object with a 'content' list")
    turns = []
    for item in rec["content"]:
        if not isinstance(item, dict):
            raise RecordDrop("bad_turn", "a turn is not an object")
        if "User" in item:
            turns.append(RawTurn("seeker", _text_of(item["User"])))
        elif "AI" in item:
            turns.append(RawTurn("supporter", _text_of(item["AI"]), _label(item.get("AI Strategy"))))
        else:
            raise RecordDrop("bad_turn", f"a turn has neither 'User' nor 'AI' ({sorted(item)[:3]})")
    return RawRecord(
        index,
        _seed_id(rec, "id", index),
        _str_field(rec, "scene"),
        _str_field(rec, "description", "situation"),
        turns,
        {},
    )


_ESCONV_SPEAKERS = {"usr": "seeker", "seeker": "seeker", "sys": "supporter", "supporter": "supporter"}


def esconv_record(index: int, rec: Any) -> RawRecord:
    """ESConv.json ({speaker seeker/supporter, content, annotation.strategy}) or the HF split
    ({speaker usr/sys, text, strategy})."""
    if not isinstance(rec, dict) or not isinstance(rec.get("dialog"), list):
        raise RecordDrop("bad_record", "expected an object with a 'dialog' list")
    turns = []
    for item in rec["dialog"]:
        if not isinstance(item, dict):
            raise RecordDrop("bad_turn", "a turn is not an object")
        speaker = _ESCONV_SPEAKERS.get(str(item.get("speaker", "")).strip().lower())
        if speaker is None:
            raise RecordDrop("bad_speaker", f"unknown speaker {item.get('speaker')!r}")
        raw_text = item["text"] if "text" in item else item.get("content")
        label = _label(item.get("strategy", item.get("annotation")))
        turns.append(RawTurn(speaker, _text_of(raw_text), label if speaker == "supporter" else None))
    meta = _checked_meta({k: rec[k] for k in ("emotion_type", "experience_type") if isinstance(rec.get(k), str)})
    return RawRecord(
        index, str(index), _str_field(rec, "problem_type"), _str_field(rec, "situation"), turns, meta
    )


def canonical_record(index: int, rec: Any) -> RawRecord:
    """escpro's own JSONL: {"seed_id", "scene", "situation", "turns": [{speaker, text, strategy}]}."""
    if not isinstance(rec, dict) or not isinstance(rec.get("turns"), list):
        raise RecordDrop("bad_record", "expected an object with a 'turns' list")
    turns = []
    for item in rec["turns"]:
        if not isinstance(item, dict):
            raise RecordDrop("bad_turn", "a turn is not an object")
        speaker = str(item.get("speaker", "")).strip().lower()
        if speaker not in ("seeker", "supporter"):
            raise RecordDrop("bad_speaker", f"unknown speaker {item.get('speaker')!r}")
        turns.append(
            RawTurn(
                speaker,
                _text_of(item.get("text")),
                _label(item.get("strategy")),
                bool(item.get("context_only", False)),
            )
        )
    meta = _checked_meta(rec.get("meta") if isinstance(rec.get("meta"), dict) else {})
    return RawRecord(
        index,
        _seed_id(rec, "seed_id", index),
        _str_field(rec, "scene"),
        _str_field(rec, "situation", "description"),
        turns,
        meta,
    )


READERS = {"extes": extes_record, "esconv": esconv_record, "jsonl": canonical_record}
