"""`escpro build`: expand seed dialogues into strategy trees by MCTS, stored in DuckDB."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from escpro.build.run import BuildOptions, parse_shard, run_build
from escpro.cli_common import emit, escpro_command
from escpro.config import load_config
from escpro.config_base import SEED_MAX

BACKENDS = ["openai", "transformers", "llamacpp", "vllm-offline", "sim"]


def _summary_text(s: dict) -> str:
    t = s["trees"]
    lines = []
    if s["dry_run"]:
        lines.append(
            "PLAN: the build ran against the simulator in a temporary file (nothing kept). A real "
            "model ends dialogues and fails calls at its own rates, so read the numbers as an "
            "estimate of the calls and tokens the real build needs."
        )
    else:
        lines.append(f"build {s['run_id']} -> {s['db']}")
    seeds = s["seeds"]
    dropped = ", ".join(f"{k} {v}" for k, v in seeds["dropped"].items()) or "none"
    lines.append(
        f"  seeds: {seeds['read']} read, {seeds['kept']} kept (dropped: {dropped}), "
        f"{seeds['selected']} selected"
    )
    lines.append(
        f"  trees: {t['done']} done, {t['failed']} failed, {t['skipped']} already finished "
        f"(file: {', '.join(f'{k} {v}' for k, v in sorted(s['tree_status'].items()))})"
    )
    lines.append(f"  iterations: {s['iterations']}   nodes: {s['nodes']}   end nodes: {s['end_nodes']}")
    roles = sorted(set(s["calls"]) | set(s["cached_calls"]))
    total_calls = sum(s["calls"].values())
    lines.append(
        f"  calls sent: {total_calls} ({s['calls_per_s']}/s), answered from cache: "
        f"{sum(s['cached_calls'].values())}, failed: {sum(s['failed_calls'].values())}"
    )
    for r in roles:
        tok = s["tokens"].get(r, {"prompt": 0, "completion": 0})
        lines.append(
            f"    {r:<10} sent {s['calls'].get(r, 0):>7}  cached {s['cached_calls'].get(r, 0):>6}"
            f"  failed {s['failed_calls'].get(r, 0):>5}  tokens {tok['prompt']:>9} in "
            f"{tok['completion']:>8} out"
        )
    lines.append(f"  tokens: {s['total_tokens']}   time: {s['elapsed_s']:.1f} s")
    if s.get("retried_trees"):
        lines.append(f"  retried failed trees: {len(s['retried_trees'])}")
    if s.get("role_change"):
        lines.append("  roles changed (--allow-role-change): " + "; ".join(s["role_change"]["differences"]))
    for f in s["failures"][:10]:
        lines.append(f"  failed {f['tree_id']}: {f['reason']}")
    if len(s["failures"]) > 10:
        lines.append(f"  ... {len(s['failures']) - 10} more failed trees (see the trees table)")
    if s["sim_roles"] and not s["dry_run"]:
        lines.append(f"  note: {', '.join(s['sim_roles'])} answered by the simulator (backend sim)")
    return "\n".join(lines)


@escpro_command(name="build", config=True)
@click.option("--seeds", "seeds", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Seed dialogues: ExTES JSON, ESConv JSON/JSONL or escpro JSONL.")
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="DuckDB file to write (required unless --dry-run).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N seeds (after --shard).")
@click.option("--resume", is_flag=True,
              help="Continue the build in --db with the roles recorded with it: finished trees "
                   "are kept, the others go on from their last commit.")
@click.option("--retry-failed", is_flag=True,
              help="With --resume: also re-run the failed trees, from their last commit "
                   "(recorded with the run).")
@click.option("--allow-role-change", is_flag=True,
              help="With --resume and --endpoints: let roles move to the endpoints named there "
                   "even though they differ from the recorded ones (recorded with the run).")
@click.option("--shard", default=None, metavar="I/N",
              help="Only seeds whose index % N == I (each machine writes its own --db; "
                   "combine them with `escpro merge`).")
@click.option("--taxonomy", default=None, help="Strategy taxonomy (cso8, esconv8, or a YAML file).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Put every role on this backend (sim: the seeded simulator, never a default).")
@click.option("--endpoints", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Endpoints file written by `escpro serve` (role -> base_url, model).")
@click.option("--random-seed", type=click.IntRange(0, SEED_MAX), default=None,
              help="Sampling seed for every role call (a resumed build reuses the stored one).")
@click.option("--dry-run", is_flag=True,
              help="Plan: run the whole build against the simulator in a temporary file and "
                   "report the calls and tokens the real build would need.")
@click.option("--format", "seeds_format", default="auto", show_default=True,
              help="Seed file format.")
@click.option("--strict", is_flag=True, help="Stop at the first bad seed record.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def build(seeds, db, limit, resume, retry_failed, allow_role_change, shard, taxonomy, backend,
          endpoints, random_seed, dry_run, seeds_format, strict, no_progress, config_path, as_json,
          log_level):
    """Expand seed dialogues into conversation trees with the paper's MCTS (PUCB selection,
    Strategy-role expansion, greedy simulation, reward backpropagation), many trees at once,
    committed to a DuckDB file as it goes. Kill it at any time; --resume continues exactly, with
    the roles recorded with the build. The roles must be given (--endpoints, the config's roles,
    or --backend); the simulator runs only when named (--backend sim).

    \b
    Examples:
      escpro build --seeds seeds.jsonl --db trees.duckdb --config configs/build/paper.yaml
      escpro build --seeds seeds.jsonl --db trees.duckdb --resume
      escpro build --seeds seeds.jsonl --db trees.duckdb --resume --retry-failed
      escpro build --seeds seeds.jsonl --db shard1.duckdb --shard 1/4 --endpoints endpoints.json
      escpro build --seeds seeds.jsonl --dry-run --config configs/build/paper.yaml
    """
    overrides: dict = {"build": {}}
    if taxonomy:
        overrides["build"]["taxonomy"] = taxonomy
    cfg = load_config(config_path, overrides)
    opts = BuildOptions(
        seeds=seeds, db=db, config=cfg, limit=limit, resume=resume, shard=parse_shard(shard),
        backend=backend, endpoints=endpoints, random_seed=random_seed, dry_run=dry_run,
        seeds_format=seeds_format, strict=strict, allow_role_change=allow_role_change,
        retry_failed=retry_failed,
        command=" ".join(shlex.quote(a) for a in ["escpro", *sys.argv[1:]]),
    )
    result = run_build(opts, progress=not (no_progress or as_json))
    summary = result.to_dict()
    emit(summary, as_json, lambda: _summary_text(summary))
    if summary["trees"]["failed"] and not summary["trees"]["done"]:
        sys.exit(4)
