"""`escpro extract`: ESC-Pro preference, KTO and SFT files from a build's DuckDB file."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from escpro.cli_common import emit, escpro_command
from escpro.config import load_config
from escpro.config_base import SEED_MAX
from escpro.extract.run import ExtractOptions, ExtractResult, run_extract


@escpro_command(name="extract", config=True)
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
    cfg = load_config(config_path, {"extract": {k: v for k, v in flags.items() if v is not None}})
    bar = tqdm(desc="reading trees", unit="tree", disable=True if as_json else None, leave=False)
    try:
        res = run_extract(ExtractOptions(
            db=db_path, out=out_dir, config=cfg, taxonomy=taxonomy, ablation=ablation,
            backend=backend, endpoints=endpoints, allow_sim=allow_sim,
            strict_template=strict_template, licence=licence, hub_repo=hub_repo,
            progress=bar.update, quiet=as_json))
    finally:
        bar.close()
    emit(res.to_dict(), as_json, lambda: _text(res, db_path))


def _text(res: ExtractResult, db_path: Path) -> str:
    c, man, extra = res.counts, res.manifest, res.ablation
    lines = [
        f"{res.out}: ESC-Pro{'-Random' if extra.get('ablation') else ''} from {db_path} "
        f"(rule {man['rule']}, theta {man['theta']:g}, taxonomy {man['taxonomy']})",
        f"  trees: {c['trees_extracted']} extracted, {c['trees_with_valid_path']} with a valid path"
        + (f", {c['trees_skipped']} skipped (not done)" if c["trees_skipped"] else ""),
        f"  valid paths (dialogues): {c['valid_paths']}",
        f"  pairs: {c['pairs']} ({c['pair_duplicates_removed']} duplicates removed)",
        f"  kto: {c['kto']} ({c['kto_desirable']} desirable, {c['kto_undesirable']} undesirable; "
        f"{c['kto_duplicates_removed']} duplicates removed)",
    ]
    if not extra.get("ablation"):
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
    lines.append("  files: " + ", ".join(sorted(res.written["files"])))
    lines.append(f"  dataset card: {extra['card']['card']} (licence {extra['card']['license']})"
                 + (f"; pushed: {extra['hub']}" if extra.get("hub") else ""))
    return "\n".join(lines)
