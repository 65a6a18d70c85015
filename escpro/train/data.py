"""Reading and validating training records (no torch): the files `escpro extract` writes.

Shapes (TRL's conversational formats plus ESC-Pro bookkeeping):
  pairs.jsonl  {prompt: [msgs], chosen: [assistant msg], rejected: [assistant msg], path_ids, ...}
  kto.jsonl    {prompt: [msgs], completion: [assistant msg], label: bool, path_ids, ...}
  sft.jsonl    {messages: [msgs], path_id}
Every problem is reported as one line naming the file and record, before any model is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escpro.atomic import sha256_file  # noqa: F401  (the one helper; re-exported)
from escpro.errors import DataError
from escpro.train.methods import KIND_FILES, KIND_KEYS, KIND_NAMES, REGISTRY, method

ROLES = {"system", "user", "assistant"}



@dataclass
class TrainData:
    """Records ready for the chat template (still untokenized), and where they came from."""

    path: Path
    kind: str  # pairs | kto | sft
    records: list[dict[str, Any]]
    file_sha256: str
    read: int
    selected_paths: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def _who_reads() -> str:
    by_file: dict[str, list[str]] = {}
    for m in REGISTRY.values():
        by_file.setdefault(m.data_file, []).append(m.name)
    return ", ".join(f"{'/'.join(names)} read{'s' if len(names) == 1 else ''} {f}" for f, names in by_file.items())


def resolve_data_file(data: str | Path, name: str) -> Path:
    """A file is used as given; a directory (an `escpro extract` output) gives the method's file."""
    p = Path(data)
    if p.is_file():
        return p
    if p.is_dir():
        f = p / method(name).data_file
        if not f.is_file():
            others = ", ".join(sorted(x.name for x in p.glob("*.jsonl"))) or "no .jsonl files"
            raise DataError(f"{p}: no {f.name} for method {name} ({_who_reads()}); found: {others}")
        return f
    raise DataError(f"{p}: data file or directory not found")





def detect_kind(rec: dict[str, Any]) -> str | None:
    if "messages" in rec:
        return "sft"
    if "chosen" in rec or "rejected" in rec:
        return "pairs"
    if "completion" in rec or "label" in rec:
        return "kto"
    return None


def _check_messages(msgs: Any, where: str, what: str) -> None:
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"{where}: '{what}' must be a non-empty list of chat messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(f"{where}: '{what}'[{i}] must be a message {{role, content}}")
        if m["role"] not in ROLES:
            raise DataError(f"{where}: '{what}'[{i}] has unknown role {m['role']!r} (system/user/assistant)")
        if not isinstance(m["content"], str):
            raise DataError(f"{where}: '{what}'[{i}].content must be a string")


def _check_completion(msgs: Any, where: str, what: str) -> None:
    _check_messages(msgs, where, what)
    if any(m["role"] != "assistant" for m in msgs):
        raise DataError(f"{where}: '{what}' must contain assistant messages only")


def validate_record(rec: Any, kind: str, where: str) -> None:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: a record must be a JSON object")
    missing = [k for k in KIND_KEYS[kind] if k not in rec]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)} for {KIND_NAMES[kind]}")
    if kind == "sft":
        _check_messages(rec["messages"], where, "messages")
        if not any(m["role"] == "assistant" for m in rec["messages"]):
            raise DataError(f"{where}: 'messages' has no assistant turn to learn from")
        return
    _check_messages(rec["prompt"], where, "prompt")
    if rec["prompt"][-1]["role"] != "user":
        raise DataError(f"{where}: 'prompt' must end with a user message")
    if kind == "pairs":
        _check_completion(rec["chosen"], where, "chosen")
        _check_completion(rec["rejected"], where, "rejected")
    else:
        _check_completion(rec["completion"], where, "completion")
        if not isinstance(rec["label"], bool):
            raise DataError(f"{where}: 'label' must be true or false, got {rec['label']!r}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None
    return out


def record_paths(rec: dict[str, Any]) -> list[str]:
    ids = rec.get("path_ids")
    if ids is None and "path_id" in rec:
        ids = [rec["path_id"]]
    return [str(x) for x in ids] if isinstance(ids, list) else []


def path_order(records: list[dict[str, Any]]) -> list[str]:
    """Distinct path ids in order of first appearance."""
    seen: dict[str, None] = {}
    for r in records:
        for p in record_paths(r):
            seen.setdefault(p, None)
    return list(seen)


def unpair(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pairs -> unpaired KTO records (chosen desirable, rejected undesirable), duplicates dropped."""
    out, seen = [], set()
    for r in records:
        for key, label in (("chosen", True), ("rejected", False)):
            rec = {"prompt": r["prompt"], "completion": r[key], "label": label, "path_ids": record_paths(r)}
            sig = json.dumps([rec["prompt"], rec["completion"], label], sort_keys=True)
            if sig not in seen:
                seen.add(sig)
                out.append(rec)
    return out


def load_train_data(data: str | Path, name: str, dialogues: int | None = None) -> TrainData:
    """Read, validate and (with `dialogues`) subset the data for method `name`."""
    path = resolve_data_file(data, name)
    raw = read_jsonl(path)
    if not raw:
        raise DataError(f"{path}: empty dataset (no records)")
    want = method(name).data
    have = detect_kind(raw[0]) if isinstance(raw[0], dict) else None
    notes: list[str] = []
    if have is None:
        raise DataError(
            f"{path}: record 1: unrecognised format (keys {sorted(raw[0]) if isinstance(raw[0], dict) else type(raw[0]).__name__}); "
            f"method {name} needs {KIND_NAMES[want]}"
        )
    if have != want and not (want == "kto" and have == "pairs"):
        raise DataError(
            f"{path}: holds {KIND_NAMES[have]} but method {name} needs {KIND_NAMES[want]} "
            f"(use {KIND_FILES[want]} from the `escpro extract` output)"
        )
    for i, rec in enumerate(raw, 1):
        validate_record(rec, have, f"{path}: record {i}")
    records = raw
    if want == "kto" and have == "pairs":
        records = unpair(raw)
        notes.append(f"unpaired {len(raw)} pairs into {len(records)} KTO records")

    selected = None
    if dialogues is not None:
        order = _dialogue_order(path, records)
        if not order:
            raise DataError(f"{path}: --dialogues needs records with path_ids (or path_id); none have them")
        selected = order[:dialogues]
        keep = set(selected)
        records = [r for r in records if keep.intersection(record_paths(r))]
        notes.append(f"first {len(selected)} of {len(order)} dialogues: {len(records)} records")
    if want == "kto":
        labels = {r["label"] for r in records}
        if len(labels) < 2:
            only = "desirable" if True in labels else "undesirable"
            raise DataError(f"{path}: KTO needs desirable and undesirable examples; all {len(records)} are {only}")
    if not records:
        raise DataError(f"{path}: empty dataset after selecting dialogues")
    return TrainData(path, want, records, sha256_file(path), len(raw), selected, notes)


def _dialogue_order(path: Path, records: list[dict[str, Any]]) -> list[str]:
    """The dialogue order of an extract directory is sft.jsonl's (one record per valid path), so
    `--dialogues N` picks the same N dialogues whatever the method; otherwise the file's own order."""
    sft = path.parent / KIND_FILES["sft"]
    if sft.is_file() and sft != path:
        try:
            order = path_order(read_jsonl(sft))
        except DataError:
            order = []
        if order:
            return order
    return path_order(records)
