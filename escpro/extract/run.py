"""`escpro extract` as a library call: `run_extract(ExtractOptions) -> ExtractResult`.

A build's DuckDB file -> pairs / KTO / SFT / LLaMA-Factory files, the manifest and the dataset
card (optionally the ESC-Pro-Random ablation, the strict-template variant and a Hub upload). The
command only parses flags and prints; the demo and scripts call this directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escpro.config import AppConfig
from escpro.errors import ConfigError, NotBuiltError
from escpro.extract import export
from escpro.extract.pipeline import Extraction, build_records, check_sources, collect, manifest
from escpro.extract.records import dedupe_pairs, kto_records
from escpro.roles.config import RolesConfig


@dataclass
class ExtractOptions:
    db: Path
    out: Path
    config: AppConfig  # its `extract` section holds theta, rule, min_n, ...; `roles` the ablation's
    taxonomy: str | None = None  # None: the run's (runs.taxonomy)
    ablation: str | None = None  # "random": ESC-Pro-Random
    backend: str | None = None  # ablation: every role on this backend
    endpoints: Path | None = None  # ablation: endpoints file
    allow_sim: bool = False
    strict_template: bool = False
    licence: str | None = None
    hub_repo: str | None = None
    progress: Callable[[int], Any] | None = None  # called with the trees read
    quiet: bool = True  # no progress bar for the ablation's supporter calls


@dataclass
class ExtractResult:
    out: Path
    counts: dict[str, int]
    manifest: dict[str, Any]
    written: dict[str, Any]
    extraction: Extraction
    ablation: dict[str, Any] = field(default_factory=dict)  # ablation, supporter calls, card, hub

    def to_dict(self) -> dict[str, Any]:
        """What `escpro extract --json` prints."""
        man = self.manifest
        return {"out": str(self.out),
                **{k: man[k] for k in ("rule", "theta", "taxonomy", "run_ids", "db_sha256")},
                "counts": self.counts, "sources": man["sources"], "warnings": man["warnings"],
                "trees_without_result": man["trees_without_result"], **self.ablation}


def run_extract(opts: ExtractOptions) -> ExtractResult:
    ec = opts.config.extract
    ex = collect(opts.db, theta=ec.theta, rule=ec.rule, min_n=ec.reference_min_n,
                 taxonomy=opts.taxonomy, include_unfinished=ec.include_unfinished,
                 progress=opts.progress)
    if opts.ablation not in (None, "random"):
        raise ConfigError(f"--ablation {opts.ablation}: only 'random'")
    ablation_roles = (ablation_roleset(opts.config.roles, opts.backend, opts.endpoints)
                      if opts.ablation == "random" else None)
    if ablation_roles is not None:  # its rejected replies are data too
        sup = ablation_roles.supporter
        ex.sources.append({"backend": sup.backend, "model": sup.model, "roles": ["supporter"],
                           "calls": 0, "trees": 0, "ablation": True})
    check_sources(ex, opts.db, opts.allow_sim)
    raw_pairs = sum(len(r.pairs) for r in ex.results)
    pairs, sft, dups = build_records(ex)
    extra: dict = {}
    if ablation_roles is not None:
        pairs, summary = _random_pairs(ablation_roles, ex, ec.random_seed, opts.quiet)
        pairs, dups["pairs"] = dedupe_pairs(pairs)
        raw_pairs = summary["requests"]
        extra = {"ablation": "random", "random_seed": ec.random_seed, "supporter_calls": summary}
        sft = None
    kto, kto_dups = kto_records(pairs)
    written = export.write_dataset(opts.out, pairs, kto, sft, prefix=ec.llamafactory_prefix)
    if opts.strict_template:  # dataset card, strict variant, Hub: escpro/extract/card.py
        from escpro.extract.card import write_strict

        written["files"].update(write_strict(opts.out))
    counts = _counts(ex, pairs, kto, sft, raw_pairs=raw_pairs, dups=dups, kto_dups=kto_dups)
    man = manifest(ex, opts.db, theta=ec.theta, rule=ec.rule, min_n=ec.reference_min_n,
                   counts=counts, written=written, extra=extra)
    export.write_json(opts.out / export.MANIFEST, man)
    from escpro.extract.card import push_to_hub, write_card

    extra["card"] = write_card(opts.out, man, opts.db, licence=opts.licence)
    if opts.hub_repo:
        extra["hub"] = push_to_hub(opts.out, opts.hub_repo)
    return ExtractResult(opts.out, counts, man, written, ex, extra)


def _counts(ex: Extraction, pairs, kto, sft, *, raw_pairs: int, dups: dict, kto_dups: int) -> dict:
    return {
        "trees": len(ex.trees) + len(ex.skipped),
        "trees_extracted": len(ex.trees),
        "trees_skipped": len(ex.skipped),
        "trees_with_valid_path": sum(1 for r in ex.results if r.paths),
        "valid_paths": sum(len(r.paths) for r in ex.results),
        "pairs_found": raw_pairs,
        "pairs": len(pairs),
        "pair_duplicates_removed": dups["pairs"],
        "kto": len(kto),
        "kto_desirable": sum(1 for r in kto if r["label"]),
        "kto_undesirable": sum(1 for r in kto if not r["label"]),
        "kto_duplicates_removed": kto_dups,
        "sft": len(sft) if sft is not None else 0,
        "sft_duplicates_removed": dups["sft"] if sft is not None else 0,
    }


def _random_pairs(roles: RolesConfig, ex: Extraction, seed: int, quiet: bool):
    from tqdm import tqdm

    from escpro.extract import ablation

    try:
        from escpro.roles.roleset import build_roleset
    except ImportError as exc:
        raise NotBuiltError(f"--ablation random needs the role models (escpro.roles.roleset): {exc}") from None
    items = ablation.plan(ex.trees, ex.results, ex.taxonomy, seed)

    async def run():
        roleset = build_roleset(roles, ex.taxonomy, random_seed=seed)
        bar = tqdm(total=len(items), desc="supporter replies", unit="call",
                   disable=True if quiet else None, leave=False)
        try:
            return await ablation.generate(items, roleset, ex.taxonomy, progress=bar.update)
        finally:
            bar.close()
            await roleset.aclose()

    return asyncio.run(run())


def ablation_roleset(cfg: RolesConfig, backend: str | None, endpoints: Path | None) -> RolesConfig:
    """The ablation asks only the Supporter: it must be given (no silent simulator); the other
    roles, never called, share its engine instead of needing one of their own."""
    from escpro.build.roles import requested
    from escpro.roles.base import ROLES

    roles = requested(cfg, backend, endpoints)
    sup = roles.supporter
    if sup.backend is None:
        raise ConfigError("--ablation random: no backend for the supporter role: pass --endpoints "
                          "FILE, --backend NAME (sim: the simulator), or roles.supporter.backend "
                          "in --config")
    return roles.model_copy(update={r: sup for r in ROLES
                                    if r != "supporter" and roles.binding(r).backend is None})
