"""`escpro stats`: the paper's Table 5, strategy use by dialogue stage, search and call costs."""

from __future__ import annotations

from pathlib import Path

import click

from escpro.cli_common import emit, escpro_command
from escpro.config import load_config
from escpro.extract.stats_run import (
    TABLE5_COLS,
    TABLE5_ROWS,
    StatsOptions,
    StatsResult,
    ToxicityRequest,
    run_stats,
)


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.2f}"
    return f"{v:,}"


def table5_text(t5: dict) -> str:
    widths = [24] + [max(len(h), 10) for h, _ in TABLE5_COLS]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip([""] + [h for h, _ in TABLE5_COLS], widths, strict=True)))]
    for label, key in TABLE5_ROWS:
        cells = [label.ljust(widths[0])]
        for (_, col), w in zip(TABLE5_COLS, widths[1:], strict=True):
            cells.append(_fmt(t5[col].get(key)).rjust(w))
        lines.append("  ".join(cells))
    return "\n".join(lines)


@escpro_command(name="stats", config=True)
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="DuckDB file written by `escpro build`.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Write table5.csv, stages.csv, stages.png, q_hist.png, trees.csv, calls.csv, stats.json here.")
@click.option("--theta", type=float, default=None, help="Q threshold of valid paths (default 0.5).")
@click.option("--rule", type=click.Choice(["paper", "reference"]), default=None, help="Valid-path rule, as in `escpro extract`.")
@click.option("--taxonomy", default=None, help="Taxonomy (default: the run's).")
@click.option("--include-unfinished", is_flag=True, default=None, help="Also count trees whose status is not 'done'.")
@click.option("--toxicity", "toxicity_model", default=None, metavar="MODEL",
              help="Also score every counted utterance with this Hugging Face sequence-classification model "
                   "(a local directory or a cached hub id, e.g. a Detoxify-style multi-label model): mean score "
                   "per label for seeds, ESC-Pro seeker, preferred (+) and non-preferred (-) turns (paper Table 7).")
@click.option("--toxicity-labels", default=None, metavar="A,B,...", help="Only these labels of the model (default: all).")
@click.option("--toxicity-activation", type=click.Choice(["auto", "sigmoid", "softmax"]), default="auto", show_default=True,
              help="How logits become scores (auto: the model's declaration; sigmoid for multi-label heads).")
@click.option("--toxicity-batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Texts per forward pass.")
def stats(db_path, out_dir, theta, rule, taxonomy, include_unfinished, toxicity_model, toxicity_labels,
          toxicity_activation, toxicity_batch_size, config_path, as_json, log_level):
    """Table 5 of the paper for the seeds and for ESC-Pro, the strategy distribution over the six
    dialogue stages (stage = floor(5 i / n) / 5 for utterance i of n, n counted from the first
    seeker turn to the last supporter turn), per-tree search statistics and role-call costs per
    role from llm_calls; with --toxicity, the paper's Table 7 from a local classifier.

    Example: escpro stats --db build.duckdb --out stats/ --toxicity models/unbiased-toxic-roberta
    """
    flags = {"theta": theta, "rule": rule, "include_unfinished": include_unfinished}
    ec = load_config(config_path, {"extract": {k: v for k, v in flags.items() if v is not None}}).extract
    tox = None
    if toxicity_model:
        keep = tuple(x.strip() for x in toxicity_labels.split(",") if x.strip()) if toxicity_labels else None
        tox = ToxicityRequest(toxicity_model, labels=keep, activation=toxicity_activation,
                              batch_size=toxicity_batch_size)
    res = run_stats(StatsOptions(db=db_path, extract=ec, out=out_dir, taxonomy=taxonomy, toxicity=tox))
    emit(res.summary, as_json, lambda: _text(res, db_path, out_dir))


def _text(res: StatsResult, db_path: Path, out_dir: Path | None) -> str:
    summary, tox = res.summary, res.toxicity
    t5, trees, calls, skipped = summary["table5"], summary["trees"], summary["calls"], summary["trees_skipped"]
    files = [Path(f).name for f in summary.get("files", [])]
    lines = [f"{db_path}: rule {summary['rule']}, theta {summary['theta']:g}, taxonomy {summary['taxonomy']}", "", "Table 5", table5_text(t5),
             f"(unique nodes: {t5['unique']['preferred_nodes']} preferred, {t5['unique']['non_preferred_nodes']} non-preferred)", ""]
    done = [t for t in trees if t["iterations"] is not None]
    lines.append(f"Search: {len(trees)} trees, {sum(t['nodes'] for t in trees)} nodes, "
                 f"{sum(t['end_nodes'] for t in trees)} end nodes, "
                 f"mean iterations {sum(t['iterations'] for t in done) / len(done):.1f}" if done else
                 f"Search: {len(trees)} trees")
    q = summary["q_overall"]
    if q["nodes"]:
        lines.append(f"Q over {q['nodes']} expanded nodes: min {q['min']:.3f}  median {q['median']:.3f}  "
                     f"mean {q['mean']:.3f}  max {q['max']:.3f}  ({q['at_least_theta']} >= theta)")
    empty = [t for t in trees if not t["valid_paths"]]
    if empty:
        lines.append(f"Trees without a valid path: {len(empty)} (" + ", ".join(t["tree_id"] for t in empty[:5]) + (" ..." if len(empty) > 5 else "") + ")")
    if skipped:
        lines.append(f"Trees skipped (not done): {len(skipped)}")
    lines.append("")
    if calls:
        lines.append(f"{'role':<10} {'calls':>7} {'ok':>7} {'failed':>6} {'cached':>6} {'prompt tok':>11} {'compl tok':>10} {'lat mean':>9} {'p95 ms':>8}")
        for c in calls:
            lines.append(f"{c['role']:<10} {c['calls']:>7} {c['ok']:>7} {c['failed']:>6} {c['cached']:>6} "
                         f"{c['prompt_tokens']:>11} {c['completion_tokens']:>10} {_fmt(c['latency_mean_ms']):>9} {_fmt(c['latency_p95_ms']):>8}")
    else:
        lines.append("No role calls recorded (llm_calls is empty).")
    if tox is not None:
        from escpro.extract.toxicity import toxicity_text

        lines += ["", toxicity_text(tox)]
    if files:
        lines += ["", f"Wrote {', '.join(files)} to {out_dir}"]
    return "\n".join(lines)

