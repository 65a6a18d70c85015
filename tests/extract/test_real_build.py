"""A real `escpro build` (simulator backend, tiny config) read back by extract/stats/tree: the
prompts must be exactly the contexts the search gave the Supporter role."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.extract.pipeline import load_trees
from escpro.extract.tree import history_before

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("build")
    db = d / "build.duckdb"
    res = CliRunner().invoke(cli, [
        "build", "--seeds", str(REPO / "escpro/data/demo_seeds.json"), "--db", str(db), "--backend", "sim",
        "--config", str(REPO / "configs/build/tiny.yaml"), "--random-seed", "0", "--no-progress", "--limit", "3",
    ], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return db


def test_prompts_equal_the_build_contexts(built: Path):
    from escpro.dialogue import Utterance as Turn
    from escpro.mcts.restore import restore_state
    from escpro.mcts.tree import walk
    from escpro.mcts.world import DialogueWorld, gold_layout
    from escpro.seeds.model import Dialogue
    from escpro.store.ids import parse_node_path
    from escpro.taxonomy import load_taxonomy

    tax = load_taxonomy("cso8")
    con = duckdb.connect(str(built), read_only=True)
    checked = 0
    for tree in load_trees(con):
        rec = tree.seed
        dlg = Dialogue(rec["seed_id"], 0, rec["scene"], rec["situation"], tuple(Turn(**t) for t in rec["turns"]))
        layout = gold_layout(dlg, tax.names)
        cur = con.execute("SELECT * FROM nodes WHERE tree_id = ? ORDER BY depth, node_id", [tree.tree_id])
        cols = [c[0] for c in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        row = dict(zip([c[0] for c in con.execute("SELECT * FROM trees LIMIT 0").description],
                       con.execute("SELECT * FROM trees WHERE tree_id = ?", [tree.tree_id]).fetchone(), strict=True))
        state, tails = restore_state(row, rows, layout, row["run_id"])
        world = DialogueWorld(None, dlg, layout, None, None)
        world.gold_tails = tails
        for node in walk(state.root):
            if node.parent is None or node.kind == "unexpanded":
                continue
            nid = f"{tree.tree_id}/r" + "".join(f".{i}" for i in node.path)
            assert parse_node_path(nid)[1] == node.path
            assert tuple(history_before(tree, nid, tax)) == world.context(node.parent).history, nid
            checked += 1
    con.close()
    assert checked > 30  # every expanded node of 3 tiny trees


def test_extract_stats_tree_on_a_real_build(built: Path, tmp_path: Path):
    out = tmp_path / "esc-pro"
    res = CliRunner().invoke(cli, ["extract", "--db", str(built), "--out", str(out), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    counts = json.loads(res.output.strip().splitlines()[-1])["counts"]
    assert counts["valid_paths"] >= 3 and counts["pairs"] > 0  # every gold path is valid (Q = 1)
    sft = [json.loads(x) for x in (out / "sft.jsonl").read_text().splitlines()]
    assert sum(r["is_gold"] for r in sft) == 3
    res = CliRunner().invoke(cli, ["stats", "--db", str(built), "--json"], catch_exceptions=False)
    data = json.loads(res.output)
    assert data["table5"]["esc_pro"]["dialogues"] == counts["valid_paths"]
    assert data["table5"]["seed"]["dialogues"] == 3
    assert {c["role"] for c in data["calls"]} == {"seeker", "supporter", "strategy", "reward"}
    tid = sft[0]["tree_id"]
    res = CliRunner().invoke(cli, ["tree", "--db", str(built), "--tree", tid], catch_exceptions=False)
    assert res.exit_code == 0 and "unexpanded" in res.output and "[*EG ]" in res.output
