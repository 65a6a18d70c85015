"""On-disk cache of precomputed reference log-probs, reused across runs.

TRL (1.16) precomputes pi_ref log-probs into extra dataset columns (`ref_chosen_logps` /
`ref_rejected_logps` for DPO/IPO, `ref_logps` / `ref_KL_logps` for KTO) and caches them only in the
`datasets` cache of a dataset loaded from files, keyed by that dataset's fingerprint. Ours is keyed
by what the numbers actually depend on (reference weights, the exact records after template and
truncation, length limits, template, dtype) and stored as Parquet, so a second run with another
beta or loss reuses the first run's forward passes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escpro import atomic


def default_cache_dir() -> Path:
    base = Path(os.environ.get("ESCPRO_CACHE", Path.home() / ".cache" / "escpro"))
    return base / "ref-logps"


def cache_key(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


@dataclass
class RefLogpCache:
    root: Path
    key: str
    parts: dict[str, Any]
    hits: int = 0
    misses: int = 0

    @property
    def dir(self) -> Path:
        return self.root / self.key

    def file(self, name: str) -> Path:
        return self.dir / f"{name}.parquet"

    def load(self, name: str, rows: int) -> Any | None:
        """The cached columns as a `datasets.Dataset`, or None when absent or not matching."""
        f = self.file(name)
        if not f.is_file():
            return None
        import pyarrow.parquet as pq
        from datasets import Dataset
        from datasets.table import InMemoryTable

        table = pq.read_table(f)
        if table.num_rows != rows:
            return None
        return Dataset(InMemoryTable(table))

    def save(self, name: str, columns: Any) -> None:
        """Atomically write the ref columns (a `datasets.Dataset`) and what the key was made of."""
        import pyarrow.parquet as pq

        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_open(self.file(name), "wb") as fh:
            pq.write_table(columns.data.table, fh)
        atomic.write_text(self.dir / "key.json", json.dumps(self.parts, indent=1, sort_keys=True, default=str))


class CachedRefLogpsMixin:
    """Put before a TRL trainer class that has `_precompute_ref_logps` (DPOTrainer, KTOTrainer)."""

    escpro_cache: RefLogpCache | None = None

    def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
        from datasets import concatenate_datasets

        cache = self.escpro_cache
        if cache is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)  # type: ignore[misc]
        hit = cache.load(name, len(dataset))
        if hit is not None:
            cache.hits += 1
            return concatenate_datasets([dataset, hit], axis=1)
        out = super()._precompute_ref_logps(dataset, name, batch_size)  # type: ignore[misc]
        cache.misses += 1
        new_cols = [c for c in out.column_names if c not in dataset.column_names]
        if self.accelerator.is_main_process:  # type: ignore[attr-defined]
            cache.save(name, out.select_columns(new_cols).flatten_indices())
        return out
