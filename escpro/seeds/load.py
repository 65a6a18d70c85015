"""Load a seed file of any supported format into Dialogues, with the counts users check."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from escpro.atomic import sha256_file
from escpro.errors import DataError
from escpro.seeds.formats import FORMATS, READERS, RecordDrop, detect_format, iter_json_records
from escpro.seeds.model import Dialogue
from escpro.seeds.normalise import normalise
from escpro.taxonomy import Taxonomy, load_taxonomy


@dataclass
class SeedLoad:
    path: Path
    format: str
    taxonomy: str
    sha256: str
    read: int = 0
    dialogues: list[Dialogue] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    drop_details: list[tuple[int, str, str]] = field(default_factory=list)  # (index, reason, detail)
    merged_mixed_strategy: int = 0

    def summary(self) -> dict:
        """The numbers `escpro seeds inspect --json` prints (counts after normalisation)."""
        strategy_counts: Counter = Counter()
        n_utts = 0
        n_words = 0
        for d in self.dialogues:
            for t in d.turns:
                n_utts += 1
                n_words += len(t.text.split())
                if t.speaker == "supporter" and not t.context_only and t.strategy:
                    strategy_counts[t.strategy] += 1
        kept = len(self.dialogues)
        return {
            "path": str(self.path),
            "format": self.format,
            "taxonomy": self.taxonomy,
            "dialogues_read": self.read,
            "dialogues_kept": kept,
            "dropped": dict(sorted(self.dropped.items())),
            "strategy_counts": dict(strategy_counts.most_common()),
            "mean_turns": round(n_utts / kept, 4) if kept else 0.0,
            "mean_words_per_utterance": round(n_words / n_utts, 4) if n_utts else 0.0,
            "merged_mixed_strategy": self.merged_mixed_strategy,
            "sha256": self.sha256,
        }


file_sha256 = sha256_file  # the one helper (escpro.atomic); kept under this name for callers


def load_seeds(
    path: str | Path,
    taxonomy: str | Taxonomy = "cso8",
    fmt: str = "auto",
    strict: bool = False,
) -> SeedLoad:
    """Read, normalise and filter a seed file. Bad records are dropped and counted (or, with
    strict, stop the load naming the record); file-level damage always stops it."""
    p = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown seed format '{fmt}': use one of {', '.join(FORMATS)}")
    if not p.exists():
        raise DataError(f"{p}: file not found")
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
    records = iter_json_records(p)
    result = SeedLoad(path=p, format=fmt, taxonomy=tax.name, sha256=file_sha256(p))
    for index, rec in records:
        result.read += 1
        try:
            if result.format == "auto":
                if not isinstance(rec, dict):
                    raise RecordDrop("bad_record", "a record is not an object")
                result.format = detect_format(rec, p)
            raw = READERS[result.format](index, rec)
            norm = normalise(raw, tax, result.format)
        except RecordDrop as drop:
            if strict:
                raise DataError(f"{p}: record {index}: {drop.reason} ({drop})") from None
            result.dropped[drop.reason] += 1
            result.drop_details.append((index, drop.reason, str(drop)))
            continue
        result.dialogues.append(norm.dialogue)
        result.merged_mixed_strategy += norm.merged_mixed_strategy
    if result.format == "auto":
        if result.read:
            raise DataError(f"{p}: none of its {result.read} records is a dialogue object: not a seed file")
        result.format = "empty"
    return result
