"""The preference pairs of an `escpro extract --out` directory (pairs.jsonl, TRL conversational
format plus tree_id / chosen_node_id / rejected_node_id / path_ids), for browsing and tracing
back to the tree they came from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from escpro.errors import DataError
from escpro.jsonl import iter_objects
from escpro.ui.options import NotFound


@dataclass(frozen=True)
class PairPage:
    total: int  # pairs matching the filter
    offset: int
    rows: list[dict]


class PairSource:
    def __init__(self, out_dir: Path) -> None:
        self.dir = Path(out_dir)
        self.path = self.dir / "pairs.jsonl"
        self._cache: tuple[tuple, list[dict]] | None = None

    def manifest(self) -> dict:
        p = self.dir / "manifest.json"
        try:
            return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
        except json.JSONDecodeError:
            return {}

    def all(self) -> list[dict]:
        try:
            st = self.path.stat()
        except OSError:
            raise DataError(f"{self.path}: not found") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        out = []
        for _, _, rec in iter_objects(self.path):
            rec["_index"] = len(out)
            out.append(rec)
        self._cache = (stamp, out)
        return out

    def page(self, *, tree: str = "", strategy: str = "", offset: int = 0, limit: int = 50) -> PairPage:
        tree, strategy = tree.strip(), strategy.strip().lower()
        hits = [r for r in self.all()
                if (not tree or tree in str(r.get("tree_id", "")))
                and (not strategy or strategy in f"{r.get('chosen_strategy', '')} {r.get('rejected_strategy', '')}".lower())]
        return PairPage(len(hits), offset, [summary(r) for r in hits[offset: offset + limit]])

    def get(self, index: int) -> dict:
        recs = self.all()
        if not 0 <= index < len(recs):
            raise NotFound(f"no pair #{index} (the file has {len(recs)})")
        return recs[index]


def _last_text(messages: object) -> str:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return str(messages[-1].get("content") or "")
    return ""


def summary(rec: dict) -> dict:
    return {
        "index": rec["_index"], "tree_id": rec.get("tree_id"), "turn": rec.get("turn"),
        "chosen_node_id": rec.get("chosen_node_id"), "rejected_node_id": rec.get("rejected_node_id"),
        "chosen_strategy": rec.get("chosen_strategy"), "rejected_strategy": rec.get("rejected_strategy"),
        "chosen_q": rec.get("chosen_q"), "rejected_q": rec.get("rejected_q"),
        "chosen": _last_text(rec.get("chosen")), "rejected": _last_text(rec.get("rejected")),
        "prompt_turns": len(rec.get("prompt") or []),
    }
