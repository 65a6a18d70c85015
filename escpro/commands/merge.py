"""`escpro merge OUT IN...`: combine the DuckDB files written by shards of one build."""

from __future__ import annotations

from pathlib import Path

import click

from escpro.cli_common import emit, escpro_command
from escpro.store.merge import merge_files


@escpro_command(name="merge")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skip-duplicates", is_flag=True,
              help="Keep the first copy of a tree found in several inputs instead of failing.")
def merge(out, inputs, skip_duplicates, as_json, log_level):
    """Merge build files (e.g. one per --shard) into OUT (created, or appended to).

    Tree and node ids are derived from the seeds file and the seed index, so shards of one build
    never collide; every run record is kept.

    \b
    Example:
      escpro merge trees.duckdb shard0.duckdb shard1.duckdb shard2.duckdb shard3.duckdb
    """
    created = not out.exists()
    try:
        res = merge_files(out, list(inputs), skip_duplicates)
    except BaseException:
        if created:  # a new OUT is written whole or not at all
            for leftover in (out, out.with_name(out.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise

    def text() -> str:
        rows = res["rows"]
        return (
            f"merged {len(res['inputs'])} file(s) into {res['out']}: {rows['trees']} trees, "
            f"{rows['nodes']} nodes, {rows['judgements']} judgements, {rows['llm_calls']} calls, "
            f"{rows['runs']} runs"
            + (f" ({res['duplicate_trees_skipped']} duplicate trees skipped)"
               if res["duplicate_trees_skipped"] else "")
        )

    emit(res, as_json, text)
