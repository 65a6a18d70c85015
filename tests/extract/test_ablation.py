"""ESC-Pro-Random with the real RoleSet on the simulator backend (no model needed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from escpro.cli import cli
from escpro.extract import ablation
from escpro.extract.rules import extract_tree
from escpro.roles.config import RoleBinding, RolesConfig, SimSettings
from escpro.roles.roleset import build_roleset
from escpro.taxonomy import load_taxonomy

TAX = load_taxonomy("cso8")


def test_plan_is_seeded_and_never_draws_the_own_strategy(t1):
    res = extract_tree(t1, 0.5)
    items = ablation.plan([t1], [res], TAX, seed=7)
    # one item per distinct preferred node: r.0, r.0.0, r.0.2, r.1, r.1.0
    assert [i.node_id for i in items] == ["t1/r.0", "t1/r.0.0", "t1/r.0.2", "t1/r.1", "t1/r.1.0"]
    assert all(i.strategy != t1.node(i.node_id).strategy and i.strategy in TAX.names for i in items)
    assert [i.strategy for i in items] == [i.strategy for i in ablation.plan([t1], [res], TAX, seed=7)]
    draws = {tuple(i.strategy for i in ablation.plan([t1], [res], TAX, seed=s)) for s in range(6)}
    assert len(draws) > 1
    ctx = ablation.context_of(t1, "t1/r.0.0", TAX)
    assert ctx.scene == "Job loss" and ctx.history[-1].text == "It is." and ctx.history[-1].speaker == "seeker"


def _generate(t1, roles: RolesConfig):
    res = extract_tree(t1, 0.5)
    items = ablation.plan([t1], [res], TAX, seed=0)

    async def go():
        rs = build_roleset(roles, TAX, backend_override="sim", random_seed=0)
        try:
            return await ablation.generate(items, rs, TAX)
        finally:
            await rs.aclose()

    return items, asyncio.run(go())


def test_generate_pairs_against_preferred_reply(t1):
    items, (records, summary) = _generate(t1, RolesConfig())
    assert summary["requests"] == 5 and summary["failed"] == 0 and len(records) == 5
    for item, r in zip(items, records, strict=True):
        node = t1.node(item.node_id)
        assert r["chosen"][0]["content"] == f"({node.strategy}) {node.supporter_text}"
        assert r["rejected"][0]["content"].startswith(f"({item.strategy}) ") and len(r["rejected"][0]["content"]) > len(item.strategy) + 4
        assert r["rejected_node_id"] is None and r["ablation"] == "random" and r["prompt"][-1]["role"] == "user"


def test_failed_calls_are_counted_not_fatal(t1):
    failing = RoleBinding(sim=SimSettings(failure_rate=1.0))
    items, (records, summary) = _generate(t1, RolesConfig(supporter=failing))
    assert records == [] and summary["failed"] == 5 and summary["status"].get("ok", 0) == 0


def test_cli_ablation(db_path: Path, tmp_path: Path):
    out = tmp_path / "random"
    res = CliRunner().invoke(cli, ["extract", "--db", str(db_path), "--out", str(out), "--ablation", "random",
                                   "--backend", "sim", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["ablation"] == "random" and summary["counts"]["pairs"] == 5
    man = json.loads((out / "manifest.json").read_text())
    assert man["ablation"] == "random" and man["supporter_calls"]["requests"] == 5
    assert not (out / "sft.jsonl").exists()
