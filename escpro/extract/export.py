"""Write an ESC-Pro dataset directory: TRL files, the LLaMA-Factory copy, manifest.json.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written file that looks complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from escpro import atomic
from escpro.extract import llamafactory as lf

PAIRS = "pairs.jsonl"
KTO = "kto.jsonl"
SFT = "sft.jsonl"
LF_DIR = "llamafactory"
MANIFEST = "manifest.json"


def _atomic_write(path: Path, text: str) -> str:
    return atomic.write_text(path, text)


def write_jsonl(path: Path, records: list[dict]) -> str:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return _atomic_write(path, text)


def write_json(path: Path, obj: object) -> str:
    return _atomic_write(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_dataset(
    out: Path,
    pairs: list[dict],
    kto: list[dict],
    sft: list[dict] | None,
    *,
    prefix: str = "escpro",
) -> dict:
    """Write the files; returns {"files": {name: {records, sha256}}, "llamafactory_dropped_turns": n}."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    files[PAIRS] = {"records": len(pairs), "sha256": write_jsonl(out / PAIRS, pairs)}
    files[KTO] = {"records": len(kto), "sha256": write_jsonl(out / KTO, kto)}
    if sft is not None:
        files[SFT] = {"records": len(sft), "sha256": write_jsonl(out / SFT, sft)}

    lf_dir = out / LF_DIR
    lf_dir.mkdir(exist_ok=True)
    dropped = 0
    names: dict[str, str] = {}
    for kind, recs, conv in (
        ("pairs", pairs, lf.pair_to_sharegpt),
        ("kto", kto, lf.kto_to_sharegpt),
        ("sft", sft, lf.sft_to_sharegpt),
    ):
        if recs is None:
            continue
        rows = []
        for r in recs:
            row, d = conv(r)
            dropped += d
            rows.append(row)
        name = f"{prefix}_{kind}.json"
        names[kind] = name
        files[f"{LF_DIR}/{name}"] = {"records": len(rows), "sha256": write_json(lf_dir / name, rows)}
    info = lf.dataset_info(prefix, names)
    files[f"{LF_DIR}/dataset_info.json"] = {"records": len(info), "sha256": write_json(lf_dir / "dataset_info.json", info)}
    return {"files": files, "llamafactory_dropped_turns": dropped}
