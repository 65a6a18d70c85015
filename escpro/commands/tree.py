"""`escpro tree`: draw one conversation tree."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from escpro import atomic
from escpro.cli_common import emit, escpro_command
from escpro.config import load_config
from escpro.console import escape_controls
from escpro.errors import EscproError
from escpro.extract import render
from escpro.extract.pipeline import load_tree, resolve_taxonomy
from escpro.extract.rules import extract_tree
from escpro.store import reader as dbio


@escpro_command(name="tree", config=True)
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="DuckDB file written by `escpro build`.")
@click.option("--tree", "tree_id", default=None, help="Tree id (see `escpro query` or stats' trees.csv). Omit to list the trees.")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "svg", "png"]), default="text", show_default=True, help="svg/png need Graphviz's dot binary; text and dot always work.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here instead of stdout (required for png).")
@click.option("--theta", type=float, default=None, help="Q threshold used to mark valid paths (default 0.5).")
@click.option("--rule", type=click.Choice(["paper", "reference"]), default=None, help="Valid-path rule used for the marks.")
@click.option("--max-depth", type=int, default=None, help="Draw only this many levels below the root.")
@click.option("--show-text", type=int, default=0, show_default=True, help="Text format: append this many characters of each reply.")
@click.option("--only-paths", is_flag=True, help="Text format: show only valid-path nodes and their rejected siblings.")
@click.option("--taxonomy", default=None, help="Taxonomy for abbreviations (default: the run's).")
def tree(db_path, tree_id, fmt, out_path, theta, rule, max_depth, show_text, only_paths, taxonomy, config_path, as_json, log_level):
    """Draw one tree: strategy, prior P, Q, N per node, end (E) and gold (G) marks, valid paths
    (*) highlighted and non-preferred siblings (x) marked; unexpanded children collapsed.

    Example: escpro tree --db build.duckdb --tree 3f2a9c1b7d0e-0 --format svg --out tree.svg
    """
    flags = {"theta": theta, "rule": rule}
    ec = load_config(config_path, {"extract": {k: v for k, v in flags.items() if v is not None}}).extract
    with dbio.open_db(db_path) as con:
        if tree_id is None:
            rows = con.execute(
                "SELECT t.tree_id, t.status, t.iterations, count(n.node_id) FROM trees t "
                "LEFT JOIN nodes n USING (tree_id) GROUP BY ALL ORDER BY t.tree_id"
            ).fetchall()
            listing = [{"tree_id": r[0], "status": r[1], "iterations": r[2], "nodes": r[3]} for r in rows]
            emit(listing, as_json, lambda: escape_controls("\n".join(
                [f"{'tree_id':<24} {'status':<8} {'iter':>5} {'nodes':>6}"]
                + [f"{x['tree_id']:<24} {x['status'] or '?':<8} {x['iterations'] if x['iterations'] is not None else '-':>5} {x['nodes']:>6}" for x in listing]
            )) + "\n(pass --tree ID to draw one)")
            return
        tax = resolve_taxonomy(dbio.read_runs(con), taxonomy)
        t = load_tree(con, tree_id)
    res = extract_tree(t, ec.theta, ec.rule, ec.reference_min_n)
    if fmt == "text":
        data: str | bytes = render.render_text(t, res, tax, max_depth=max_depth, show_text=show_text, only_paths=only_paths) + "\n"
    else:
        dot_text = render.render_dot(t, res, tax, max_depth=max_depth)
        data = dot_text + "\n" if fmt == "dot" else render.render_graphviz(dot_text, fmt)
    if fmt == "png" and out_path is None:
        raise EscproError("--format png writes binary data: pass --out FILE")
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        (atomic.write_bytes if isinstance(data, bytes) else atomic.write_text)(out_path, data)
        emit({"tree_id": tree_id, "format": fmt, "out": str(out_path), "valid_paths": len(res.paths), "pairs": len(res.pairs)},
             as_json, f"wrote {out_path} ({fmt}, {len(t.nodes)} nodes, {len(res.paths)} valid paths, {len(res.pairs)} pairs)")
    elif as_json:
        emit({"tree_id": tree_id, "format": fmt, "content": data if isinstance(data, str) else None}, True)
    elif isinstance(data, bytes):
        sys.stdout.buffer.write(data)
    else:  # seed and model text is data: no escape sequence reaches the terminal
        click.echo(escape_controls(data), nl=False)
