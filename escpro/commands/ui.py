"""`escpro ui`: browse trees and pairs, run the paper's human evaluation; `escpro ui export`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from escpro.cli_common import common_options, emit, escpro_command, handle_errors

_PATH = click.Path(path_type=Path)


@click.group(name="ui", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="DuckDB file written by `escpro build` (opened read-only; fine while a build runs).")
@click.option("--pairs", "pairs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="An `escpro extract --out` directory to browse its preference pairs.")
@click.option("--evals", "evals", type=click.Path(file_okay=False, path_type=Path), multiple=True,
              help="An `escpro eval run --out` directory; give two or more (repeat the flag) for the "
                   "blind pairwise human evaluation.")
@click.option("--judgements", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SQLite file for the annotators' verdicts (default: judgements.sqlite beside the "
                   "first --evals directory).")
@click.option("--testset", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The eval runs' test set, when it moved since `escpro eval run`.")
@click.option("--eval-items", type=click.IntRange(min=1), default=None,
              help="Judge a random sample of this many test items (default: all).")
@click.option("--eval-seed", type=int, default=0, show_default=True, help="Seed of the task order and the sample.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--token", default=None, help="Required on every request (or env ESCPRO_UI_TOKEN).")
@click.option("--theta", type=float, default=None, help="Q threshold of the valid-path marks (default 0.5).")
@click.option("--rule", type=click.Choice(["paper", "reference"]), default=None, help="Valid-path rule of the marks.")
@click.option("--check", is_flag=True, help="Open everything, print what would be served, and exit.")
@click.pass_context
@handle_errors
@common_options
def ui(ctx, db, pairs, evals, judgements, testset, eval_items, eval_seed, host, port, token, theta, rule,
       check, config_path, as_json, log_level):
    """A local web app: the trees of a build (interactive, valid paths marked, node dialogue,
    judgements and calls), an extraction's pairs, and a blind pairwise human evaluation of two or
    more eval runs (win / tie / lose on acceptance, effectiveness, sensitivity, satisfaction).

    \b
    Examples:
      escpro ui --db trees.duckdb --pairs esc-pro/
      escpro ui --evals runs/sft --evals runs/cso --judgements human.sqlite
      escpro ui export --judgements human.sqlite --out human-eval/
    """
    if ctx.invoked_subcommand is not None:
        return
    from escpro.config import load_config
    from escpro.ui.options import TOKEN_ENV, UiOptions
    from escpro.ui.server import prepare, serve

    flags = {"theta": theta, "rule": rule}
    ec = load_config(config_path, {"extract": {k: v for k, v in flags.items() if v is not None}}).extract
    opts = UiOptions(db=db, pairs=pairs, evals=tuple(evals), judgements=judgements, host=host, port=port,
                     token=token or os.environ.get(TOKEN_ENV) or None, theta=ec.theta, rule=ec.rule,
                     reference_min_n=ec.reference_min_n, eval_items=eval_items, eval_seed=eval_seed,
                     testset=testset)
    app, info = prepare(opts)
    emit({"url": info.url, "judgements": info.judgements, "study": info.study, "check": check}, as_json,
         lambda: f"escpro ui on {info.url}" + (" (append ?token=... once in the browser)" if opts.token else "")
         + (f"\n  human evaluation: {info.study['tasks']} tasks; verdicts saved to {info.judgements}" if info.study else "")
         + ("\n  (--check: not serving)" if check else "\n  Ctrl-C to stop"))
    if not check:
        serve(app, opts)


@escpro_command(ui, name="export")
@click.option("--judgements", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The judgement file `escpro ui` wrote.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write human_eval.csv and human_eval.json here (default: print only).")
@click.option("--study", default=None, help="Study id, when the file holds more than one.")
def export(judgements, out, study, as_json, log_level):
    """The paper's human-evaluation table (Table 3): win / lose / tie percentages per criterion
    and system pair, and Fleiss' kappa across annotators; as text, CSV and JSON.

    Example: escpro ui export --judgements human.sqlite --out human-eval/
    """
    from escpro.ui.export import export_study

    res = export_study(judgements, study_id=study, out=out)
    emit(res.as_dict(), as_json, res.text)
