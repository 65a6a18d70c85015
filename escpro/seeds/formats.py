"""Reading seed files into raw records, and raw records into raw turns, per source format.

Only file-level damage (unreadable bytes, bad JSON, a wrong top-level shape) stops a load, with
the file and record index named; a record of the wrong shape becomes a RecordDrop with a reason,
so one bad record never costs the rest of the file.
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


def iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Records of a .json list or a .jsonl file; fatal errors name the file and record index."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _iter_json_list(path, text)
        return
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
        return value
    if isinstance(value, dict):
        for key in ("text", "content", "utterance"):
            if isinstance(value.get(key), str):
                return value[key]
    raise RecordDrop("bad_turn_text", f"expected text, got {type(value).__name__}")


def _str_field(rec: dict, *keys: str) -> str:
    for key in keys:
        val = rec.get(key)
        if isinstance(val, str):
            return val.strip()
    return ""


def _label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
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
        str(rec.get("id", index)),
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
    meta = {k: rec[k] for k in ("emotion_type", "experience_type") if isinstance(rec.get(k), str)}
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
    meta = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
    return RawRecord(
        index,
        str(rec.get("seed_id", index)),
        _str_field(rec, "scene"),
        _str_field(rec, "situation", "description"),
        turns,
        meta,
    )


READERS = {"extes": extes_record, "esconv": esconv_record, "jsonl": canonical_record}
