"""`escpro extract`: ESC-Pro preference, KTO and SFT files from a build's DuckDB file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from tqdm import tqdm

from escpro.cli_common import emit, escpro_command
from escpro.config import load_config
from escpro.config_base import SEED_MAX
from escpro.errors import ConfigError, NotBuiltError
from escpro.extract import export
from escpro.extract.pipeline import build_records, check_sources, collect, manifest
from escpro.extract.records import dedupe_pairs, kto_records


def _progress(total_hint: str, disable: bool):
    bar = tqdm(desc=total_hint, unit="tree", disable=True if disable else None, leave=False)
    return bar, bar.update


@escpro_command(name="extract")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="DuckDB file written by `escpro build`.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output directory (created).")
@click.option("--theta", type=float, default=None, help="Q threshold (default 0.5, paper section 3.2).")
@click.option("--rule", type=click.Choice(["paper", "reference"]), default=None, help="paper (default): every node on a valid path has Q >= theta; reference: only the end node, with Q >= theta and N >= --min-n (authors' code).")
@click.option("--min-n", type=int, default=None, help="N threshold of the reference rule (default 2).")
@click.option("--taxonomy", default=None, help="Taxonomy for the system prompt (default: the run's, from runs.taxonomy).")
@click.option("--include-unfinished", is_flag=True, default=None, help="Also extract trees whose status is not 'done'.")
@click.option("--ablation", type=click.Choice(["random"]), default=None, help="ESC-Pro-Random: pair each preferred turn with a Supporter reply for a random other strategy (needs a backend).")
@click.option("--backend", default=None, help="Ablation: backend for every role (overrides the config), e.g. sim, openai, transformers.")
@click.option("--endpoints", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Ablation: endpoints file written by `escpro serve`.")
@click.option("--allow-sim", is_flag=True, help="Extract trees that mix simulator and model answers (refused otherwise; flagged in manifest.json).")
@click.option("--random-seed", type=click.IntRange(0, SEED_MAX), default=None, help="Ablation: seed of the random strategy draw (default 0).")
@click.option("--strict-template", is_flag=True, help="Also write strict/: the system prompt folded into the first user turn, no leading assistant turn (Gemma-style chat templates).")
@click.option("--license", "licence", default=None, help="Licence id for the dataset card (default: from the seeds, e.g. cc-by-nc-4.0 for ESConv).")
@click.option("--push-to-hub", "hub_repo", default=None, metavar="OWNER/NAME", help="Upload the directory as a private Hugging Face dataset repo (needs network and a token).")
def extract(db_path, out_dir, theta, rule, min_n, taxonomy, include_unfinished, ablation, backend, endpoints, allow_sim, random_seed,
            strict_template, licence, hub_repo, config_path, as_json, log_level):
    """Turn the trees of a build into ESC-Pro training files.

    Writes pairs.jsonl (TRL preference: prompt/chosen/rejected messages), kto.jsonl (prompt,
    completion, label), sft.jsonl (messages of every valid path), llamafactory/ (sharegpt records
    and dataset_info.json) and manifest.json (run ids, database hash, rule, theta, counts, trees
    without a result, the backends and models that produced the data, warnings). Trees that mix
    simulator and model answers are refused unless --allow-sim. Every pair keeps tree_id, chosen_node_id, rejected_node_id and path_ids.

    Example: escpro extract --db build.duckdb --out esc-pro/ --rule paper --theta 0.5
    """
    flags = {"theta": theta, "rule": rule, "reference_min_n": min_n,
             "include_unfinished": include_unfinished, "random_seed": random_seed}
    overrides = {"extract": {k: v for k, v in flags.items() if v is not None}}
    cfg = load_config(config_path, overrides)
    ec = cfg.extract
    bar, tick = _progress("reading trees", as_json)
    try:
        ex = collect(db_path, theta=ec.theta, rule=ec.rule, min_n=ec.reference_min_n, taxonomy=taxonomy,
                     include_unfinished=ec.include_unfinished, progress=tick)
    finally:
        bar.close()
    ablation_roles = _ablation_roles(cfg, backend, endpoints) if ablation == "random" else None
    if ablation_roles is not None:  # its rejected replies are data too
        sup = ablation_roles.supporter
        ex.sources.append({"backend": sup.backend, "model": sup.model, "roles": ["supporter"],
                           "calls": 0, "trees": 0, "ablation": True})
    check_sources(ex, db_path, allow_sim)
    raw_pairs = sum(len(r.pairs) for r in ex.results)
    pairs, sft, dups = build_records(ex)
    extra: dict = {}
    if ablation == "random":
        pairs, summary = _random_pairs(ablation_roles, ex, ec.random_seed, as_json)
        pairs, dups["pairs"] = dedupe_pairs(pairs)
        raw_pairs = summary["requests"]
        extra = {"ablation": "random", "random_seed": ec.random_seed, "supporter_calls": summary}
        sft_out = None
    else:
        sft_out = sft
    kto, kto_dups = kto_records(pairs)
    written = export.write_dataset(out_dir, pairs, kto, sft_out, prefix=ec.llamafactory_prefix)
    if strict_template:  # dataset card, strict variant, Hub: escpro/extract/card.py
        from escpro.extract.card import write_strict

        written["files"].update(write_strict(out_dir))
    counts = {
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
        "sft": len(sft_out) if sft_out is not None else 0,
        "sft_duplicates_removed": dups["sft"] if sft_out is not None else 0,
    }
    man = manifest(ex, db_path, theta=ec.theta, rule=ec.rule, min_n=ec.reference_min_n,
                   counts=counts, written=written, extra=extra)
    export.write_json(out_dir / export.MANIFEST, man)
    from escpro.extract.card import push_to_hub, write_card

    extra["card"] = write_card(out_dir, man, db_path, licence=licence)
    if hub_repo:
        extra["hub"] = push_to_hub(out_dir, hub_repo)

    def text() -> str:
        c = counts
        lines = [
            f"{out_dir}: ESC-Pro{'-Random' if ablation else ''} from {db_path} "
            f"(rule {ec.rule}, theta {ec.theta:g}, taxonomy {ex.taxonomy.name})",
            f"  trees: {c['trees_extracted']} extracted, {c['trees_with_valid_path']} with a valid path"
            + (f", {c['trees_skipped']} skipped (not done)" if c["trees_skipped"] else ""),
            f"  valid paths (dialogues): {c['valid_paths']}",
            f"  pairs: {c['pairs']} ({c['pair_duplicates_removed']} duplicates removed)",
            f"  kto: {c['kto']} ({c['kto_desirable']} desirable, {c['kto_undesirable']} undesirable; "
            f"{c['kto_duplicates_removed']} duplicates removed)",
        ]
        if sft_out is not None:
            lines.append(f"  sft dialogues: {c['sft']}")
        if "supporter_calls" in extra:
            s = extra["supporter_calls"]
            lines.append(f"  supporter calls: {s['requests']} ({s['failed']} failed)")
        for w in man["warnings"]:
            lines.append(f"  warning: {w}")
        empty = man["trees_without_result"]
        if empty:
            lines.append(f"  trees without pairs: {len(empty)} (reasons in manifest.json), e.g.")
            for e in empty[:5]:
                lines.append(f"    {e['tree_id']}: {e['reason']}")
        lines.append("  files: " + ", ".join(sorted(written["files"])))
        lines.append(f"  dataset card: {extra['card']['card']} (licence {extra['card']['license']})"
                     + (f"; pushed: {extra['hub']}" if extra.get("hub") else ""))
        return "\n".join(lines)

    emit({"out": str(out_dir), **{k: man[k] for k in ("rule", "theta", "taxonomy", "run_ids", "db_sha256")},
          "counts": counts, "sources": man["sources"], "warnings": man["warnings"],
          "trees_without_result": man["trees_without_result"], **extra}, as_json, text)


def _random_pairs(roles, ex, seed, quiet):
    from escpro.extract import ablation

    try:
        from escpro.roles.roleset import build_roleset
    except ImportError as exc:
        raise NotBuiltError(f"--ablation random needs the role models (escpro.roles.roleset): {exc}") from None
    items = ablation.plan(ex.trees, ex.results, ex.taxonomy, seed)

    async def run():
        roleset = build_roleset(roles, ex.taxonomy, random_seed=seed)
        bar = tqdm(total=len(items), desc="supporter replies", unit="call", disable=True if quiet else None, leave=False)
        try:
            return await ablation.generate(items, roleset, ex.taxonomy, progress=bar.update)
        finally:
            bar.close()
            await roleset.aclose()

    return asyncio.run(run())


def _ablation_roles(cfg, backend, endpoints):
    """The ablation asks only the Supporter: it must be given (no silent simulator); the other
    roles, never called, share its engine instead of needing one of their own."""
    from escpro.mcts.runroles import requested
    from escpro.roles.base import ROLES

    roles = requested(cfg.roles, backend, endpoints)
    sup = roles.supporter
    if sup.backend is None:
        raise ConfigError("--ablation random: no backend for the supporter role: pass --endpoints "
                          "FILE, --backend NAME (sim: the simulator), or roles.supporter.backend "
                          "in --config")
    return roles.model_copy(update={r: sup for r in ROLES
                                    if r != "supporter" and roles.binding(r).backend is None})
