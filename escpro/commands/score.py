"""`escpro score PRED`: Q, Qw, preference bias B and ROUGE-L of a predictions file."""

from __future__ import annotations

from pathlib import Path

import click

from escpro.cli_common import emit, escpro_command


@escpro_command(name="score")
@click.argument("pred", type=click.Path(exists=True, path_type=Path))
@click.option("--taxonomy", default=None, help="Strategy taxonomy: cso8, esconv8 or a YAML file. "
              "Default: the run's taxonomy (escpro JSONL) or esconv8 (Kang et al.'s JSON).")
@click.option("--labels", default=None, help='Explicit label set instead of a taxonomy: "a,b,c".')
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resamples for 95% bootstrap confidence intervals (0 = none; 1000 is typical).")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--stem", is_flag=True, help="Porter-stem words for ROUGE-L (the paper does not).")
def score(pred, taxonomy, labels, n_boot, seed, stem, as_json, log_level):
    """Score PRED: escpro's predictions.jsonl (or a run directory) or a JSON array in Kang et
    al.'s published format ({sample_id, strg_gold, strg_pred, res_gold, res_pred, ...}).

    Q = macro-F1 and Qw = weighted-F1 of the strategy (sklearn, labels occurring in gold or
    predictions, zero_division 0); B = Kang et al.'s strategy preference bias (lower is better);
    R-L = ROUGE-L F of the reply against the gold reply. Invalid predictions (no known strategy)
    count as wrong in Q/Qw and are left out of B. --json prints fractions, not percent.

    \b
    Example:
      escpro score runs/llama-cso/predictions.jsonl --bootstrap 1000
      escpro score kang_results.json --json
    """
    from escpro.evaluate.predictions import read_predictions
    from escpro.evaluate.scoring import format_text, score_items

    items, tax, fmt = read_predictions(pred, taxonomy=taxonomy, labels=labels)
    report = score_items(items, tax, bootstrap=n_boot, seed=seed, stem=stem)
    report["source"] = str(pred)
    report["format"] = fmt
    emit(report, as_json, lambda: format_text(report, f"{pred} [{fmt} format]"))
