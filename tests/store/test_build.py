"""Whole builds through the real seed loader, RoleSet and sim backend, into real DuckDB files."""

from __future__ import annotations

import json

import duckdb
import pytest

from escpro.build.run import BuildOptions, run_build
from escpro.config import load_config
from escpro.errors import EscproError
from escpro.store.merge import merge_files
from tests.helpers import db_rows


def build(seeds, db, cfg_path, **kw):
    opts = BuildOptions(seeds=seeds, db=db, config=load_config(cfg_path), **kw)
    return run_build(opts).to_dict()


q = db_rows


def test_sim_build_trees_follow_the_rules(tmp_path, seeds_file, build_helpers):
    cfg = build_helpers["write_config"](tmp_path / "c.yaml")
    db = tmp_path / "t.duckdb"
    s = build(seeds_file, db, cfg, random_seed=3)
    assert s["trees"] == {"total": 5, "done": 5, "failed": 0, "skipped": 0}
    assert q(db, "SELECT count(*) FROM trees WHERE status = 'done'") == [(5,)]
    # ids: tree = sha[:12]-index, node = tree/r.path
    sha = s["seeds"]["sha256"]
    assert sorted(r[0] for r in q(db, "SELECT tree_id FROM trees")) == [f"{sha[:12]}-{i}" for i in range(5)]
    assert q(db, "SELECT count(*) FROM nodes WHERE node_id <> tree_id || '/r' AND "
                 "node_id <> parent_id || '.' || child_index") == [(0,)]
    assert q(db, "SELECT count(*) FROM nodes n LEFT JOIN nodes p ON n.parent_id = p.node_id "
                 "WHERE n.parent_id IS NOT NULL AND (p.node_id IS NULL OR p.depth <> n.depth - 1)") == [(0,)]
    # kinds: unexpanded nodes have no texts and were never visited; ends are flagged
    assert q(db, "SELECT count(*) FROM nodes WHERE kind = 'unexpanded' AND "
                 "(n <> 0 OR q <> 0 OR supporter_text IS NOT NULL)") == [(0,)]
    assert q(db, "SELECT count(*) FROM nodes WHERE (kind = 'end') <> is_end") == [(0,)]
    # gold path: root + 3 gold nodes per tree, the last one an end node, N >= gold_n
    assert q(db, "SELECT count(*), count(*) FILTER (WHERE kind = 'end') FROM nodes WHERE is_gold") == [(20, 5)]
    assert q(db, "SELECT min(n) FROM nodes WHERE is_gold") == [(100,)]
    # every successful iteration backpropagated through the root exactly once
    rows = q(db, """SELECT t.tree_id, r.n, (SELECT count(DISTINCT iteration) FROM judgements j
                   WHERE j.tree_id = t.tree_id), t.iterations, t.failed_iterations
                   FROM trees t JOIN nodes r ON r.node_id = t.tree_id || '/r'""")
    for _, root_n, judged_iters, iters, failed in rows:
        assert root_n - 100 == judged_iters == iters - failed
        assert 8 <= iters <= 12
    # judgement rewards follow R = (E + I + H + 7 S) / 10 - 3
    assert q(db, "SELECT count(*) FROM judgements WHERE abs(reward - ((empathy + information + "
                 "humanoid + 7 * strategy_score) / 10.0 - 3)) > 1e-9") == [(0,)]
    # every call is recorded, with its status; the run row records config, prompts and seeds
    assert q(db, "SELECT count(*) FROM llm_calls WHERE status <> 'ok'") == [(0,)]
    assert s["llm_calls_in_db"] == sum(s["calls"].values()) + sum(s["cached_calls"].values())
    run = q(db, "SELECT taxonomy, seeds_sha256, config, prompts, code_version, random_seed FROM runs")[0]
    assert run[0] == "cso8" and run[1] == sha and run[5] == 3
    assert json.loads(run[2])["build"]["max_iterations"] == 12
    assert "strategy.yaml" in json.loads(run[3])


def test_existing_file_needs_resume_and_same_search(tmp_path, seeds_file, build_helpers):
    cfg = build_helpers["write_config"](tmp_path / "c.yaml")
    db = tmp_path / "t.duckdb"
    build(seeds_file, db, cfg, limit=2)
    with pytest.raises(EscproError, match="already holds a build; pass --resume"):
        build(seeds_file, db, cfg, limit=2)
    other = build_helpers["write_config"](tmp_path / "c2.yaml", c=2.0)
    with pytest.raises(EscproError, match="build.c was 1.0, now 2.0"):
        build(seeds_file, db, other, resume=True)
    s = build(seeds_file, db, cfg, resume=True)  # 2 finished trees kept, 3 new ones built
    assert s["trees"]["skipped"] == 2 and s["trees"]["done"] == 3
    assert q(db, "SELECT count(*) FROM runs") == [(2,)]


def test_bad_seeds_are_counted_and_skipped(tmp_path, build_helpers):
    rec = build_helpers["seed_record"]
    bad_strategy = rec(7)
    bad_strategy["turns"][2]["strategy"] = "Telepathy"
    seeds = build_helpers["write_seeds"](
        tmp_path / "s.jsonl", 2, ["{not json", json.dumps(bad_strategy), json.dumps({"x": 1})])
    cfg = build_helpers["write_config"](tmp_path / "c.yaml")
    try:
        s = build(seeds, tmp_path / "t.duckdb", cfg)
    except EscproError as exc:  # a file-level error is a clean one-line error too
        assert "\n" not in str(exc)
        return
    assert s["seeds"]["kept"] == 2 and sum(s["seeds"]["dropped"].values()) >= 2
    assert s["trees"]["done"] == 2


def test_backend_failing_half_its_calls(tmp_path, seeds_file, build_helpers):
    cfg = build_helpers["write_config"](tmp_path / "c.yaml", failure_rate=0.5,
                                        max_consecutive_failures=3)
    db = tmp_path / "t.duckdb"
    s = build(seeds_file, db, cfg, random_seed=1)
    t = s["trees"]
    assert t["done"] + t["failed"] == 5
    # failures are recorded calls (after the RoleSet's bounded retries), never lost or hidden
    n_err, attempts = q(db, "SELECT count(*) FILTER (WHERE status = 'error'), max(attempts) FROM llm_calls")[0]
    assert n_err > 0 and attempts == 3
    for status, err in q(db, "SELECT status, error FROM trees"):
        assert status in ("done", "failed")
        if status == "failed":
            assert err and ("error" in err)
    assert s["failed_calls_in_db"] == n_err


def test_shards_merge_into_the_full_build(tmp_path, seeds_file, build_helpers):
    cfg = build_helpers["write_config"](tmp_path / "c.yaml")
    full = tmp_path / "full.duckdb"
    build(seeds_file, full, cfg, random_seed=5)
    shards = []
    for i in range(2):
        p = tmp_path / f"shard{i}.duckdb"
        s = build(seeds_file, p, cfg, random_seed=5, shard=(i, 2))
        assert s["seeds"]["selected"] == (3 if i == 0 else 2)
        shards.append(p)
    merged = tmp_path / "merged.duckdb"
    res = merge_files(merged, shards)
    assert res["rows"]["trees"] == 5 and res["rows"]["runs"] == 2
    con = duckdb.connect(str(merged), read_only=True)
    con.execute(f"ATTACH '{full}' AS f (READ_ONLY)")
    assert con.execute("SELECT count(*) FROM (SELECT * FROM nodes EXCEPT SELECT * FROM f.nodes)").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM nodes").fetchone() == con.execute("SELECT count(*) FROM f.nodes").fetchone()
    con.close()
    with pytest.raises(EscproError, match="built twice"):
        merge_files(merged, shards[:1])


def test_dry_run_writes_nothing_and_reports_cost(tmp_path, seeds_file, build_helpers):
    cfg = build_helpers["write_config"](tmp_path / "c.yaml")
    s = build(seeds_file, None, cfg, dry_run=True)
    assert s["dry_run"] and s["db"] is None and s["total_tokens"] > 0
    assert set(s["calls"]) == {"seeker", "supporter", "strategy", "reward"}
    assert list(tmp_path.glob("*.duckdb")) == []


def test_build_from_real_esconv_seeds(tmp_path, shared_data, repo_dir):
    """Real-format seeds (greetings, merged turns, context-only turns) become gold paths."""
    cfg = load_config(repo_dir / "configs/build/tiny.yaml", {"build": {"taxonomy": "esconv8"}})
    db = tmp_path / "t.duckdb"
    s = run_build(BuildOptions(seeds=shared_data / "esconv_valid_sample.jsonl", db=db,
                               config=cfg, limit=3, random_seed=0)).to_dict()
    assert s["trees"]["done"] == 3
    from escpro.seeds.load import load_seeds

    dialogues = load_seeds(shared_data / "esconv_valid_sample.jsonl", "esconv8").dialogues[:3]
    for d in dialogues:
        tid = f"{s['seeds']['sha256'][:12]}-{d.index}"
        gold = q(db, "SELECT strategy, supporter_text FROM nodes WHERE tree_id = ? AND is_gold "
                     "AND depth > 0 ORDER BY depth", [tid])
        want = [(d.turns[i].strategy, d.turns[i].text) for i in d.gold_supporter_indices]
        assert gold == want
        assert q(db, "SELECT kind FROM nodes WHERE tree_id = ? AND is_gold ORDER BY depth DESC "
                     "LIMIT 1", [tid]) == [("end",)]


def test_a_run_record_that_cannot_be_written_stops_the_build_at_once(tmp_path, monkeypatch,
                                                                      build_helpers):
    """The run record is written beside the first calls (store/writer.py). If it cannot be, the
    build stops with that error right away, not at its first commit point (here the first calls
    take 4 s: nothing they return could be committed), and the new file, which holds no run, is
    removed."""
    import time

    import escpro.store.writer as writer
    from escpro.store.db import StoreError

    db = tmp_path / "x.duckdb"

    def refuse(con, rec):
        raise StoreError(f"{db}: simulated: no space left on device")

    monkeypatch.setattr(writer, "record_run", refuse)
    seeds = build_helpers["write_seeds"](tmp_path / "seeds.jsonl", 3)
    cfg = load_config(build_helpers["write_config"](tmp_path / "c.yaml", latency_ms=4000.0))
    t0 = time.monotonic()
    with pytest.raises(StoreError, match="simulated: no space left on device"):
        run_build(BuildOptions(seeds=seeds, db=db, config=cfg, random_seed=1))
    assert time.monotonic() - t0 < 2.5
    assert not db.exists()
