"""`escpro extract` end to end on a hand-built database: files, manifest, trace-back, formats."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.extract.records import dedupe_pairs, kto_records
from escpro.formatting import system_prompt
from escpro.taxonomy import load_taxonomy


def run(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def out(db_path: Path, tmp_path: Path) -> Path:
    o = tmp_path / "esc-pro"
    run("extract", "--db", str(db_path), "--out", str(o))
    return o


def test_files_and_manifest(out: Path, db_path: Path):
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == {
        "pairs.jsonl", "kto.jsonl", "sft.jsonl", "manifest.json", "README.md", "llamafactory/dataset_info.json",
        "llamafactory/escpro_pairs.json", "llamafactory/escpro_kto.json", "llamafactory/escpro_sft.json",
    }
    man = json.loads((out / "manifest.json").read_text())
    assert man["run_id"] == "run1" and man["rule"] == "paper" and man["theta"] == 0.5
    assert man["taxonomy"] == "cso8"
    import hashlib
    assert man["db_sha256"] == hashlib.sha256(db_path.read_bytes()).hexdigest()
    c = man["counts"]
    assert (c["trees_extracted"], c["trees_skipped"], c["valid_paths"], c["pairs"], c["sft"]) == (3, 1, 3, 7, 3)
    # 5 preferred nodes and 4 distinct rejected nodes; r.2/r.3 (same prompt for r.0 and r.1) once
    assert (c["kto_desirable"], c["kto_undesirable"]) == (5, 4)
    assert man["excluded"]["rejected_unjudged"] == 0  # every rejected sibling here has N >= 1
    reasons = {e["tree_id"]: e["reason"] for e in man["trees_without_result"]}
    assert reasons == {"t2": "no end node with Q >= 0.5 (best 0.200)", "t3": "no end node"}
    assert man["trees_skipped"][0]["tree_id"] == "t4"
    assert man["files"]["pairs.jsonl"]["records"] == 7


def test_pair_prompt_and_turns(out: Path):
    tax = load_taxonomy("cso8")
    pairs = {(r["chosen_node_id"], r["rejected_node_id"]): r for r in jsonl(out / "pairs.jsonl")}
    r = pairs[("t1/r.0.0", "t1/r.0.1")]
    assert r["prompt"] == [
        {"role": "system", "content": system_prompt(tax)},
        {"role": "assistant", "content": "Hi, how can I help?"},  # seed greeting (no strategy)
        {"role": "user", "content": "I lost my job."},
        {"role": "assistant", "content": "(Emotional Validation) That sounds hard."},
        {"role": "user", "content": "It is."},
    ]
    assert r["chosen"] == [{"role": "assistant", "content": "(Affirmation) You are strong."}]
    assert r["rejected"] == [{"role": "assistant", "content": "(Collaborative Planning) Let us plan your search."}]
    assert r["path_ids"] == ["t1/r.0.0"] and r["tree_id"] == "t1" and r["turn"] == 2
    assert pairs[("t1/r.0", "t1/r.2")]["path_ids"] == ["t1/r.0.0", "t1/r.0.2"]
    # the gold path is a preferred dialogue in the SFT file
    sft = {s["path_id"]: s for s in jsonl(out / "sft.jsonl")}
    assert sft["t1/r.0.0"]["is_gold"] and not sft["t1/r.1.0"]["is_gold"]
    assert [m["content"] for m in sft["t1/r.0.0"]["messages"][1:]] == [
        "Hi, how can I help?", "I lost my job.", "(Emotional Validation) That sounds hard.", "It is.",
        "(Affirmation) You are strong.", "Thanks, bye.",
    ]
    # an end node whose seeker only ended adds no empty user turn
    assert sft["t1/r.0.2"]["messages"][-1]["role"] == "assistant"


def test_pairs_trace_back_with_sql(out: Path, db_path: Path):
    con = duckdb.connect(str(db_path), read_only=True)
    for r in jsonl(out / "pairs.jsonl"):
        row = con.execute(
            "SELECT c.strategy, c.supporter_text, c.q, x.strategy, x.supporter_text, x.q, c.parent_id = x.parent_id "
            "FROM nodes c JOIN nodes x ON x.node_id = ? WHERE c.node_id = ?",
            [r["rejected_node_id"], r["chosen_node_id"]],
        ).fetchone()
        assert r["chosen"][0]["content"] == f"({row[0]}) {row[1]}"
        assert r["rejected"][0]["content"] == f"({row[3]}) {row[4]}"
        assert row[2] >= 0.5 > row[5] and row[6]
        ends = con.execute("SELECT count(*) FROM nodes WHERE kind = 'end' AND list_contains(?, node_id)",
                           [r["path_ids"]]).fetchone()[0]
        assert ends == len(r["path_ids"])
    con.close()


def test_reference_rule_and_unfinished(db_path: Path, tmp_path: Path):
    o = tmp_path / "ref"
    run("extract", "--db", str(db_path), "--out", str(o), "--rule", "reference", "--include-unfinished")
    man = json.loads((o / "manifest.json").read_text())
    assert man["rule"] == "reference" and "N >= 2" in man["rule_text"]
    assert man["counts"]["trees_extracted"] == 4 and man["counts"]["pairs"] == 6
    got = {(r["chosen_node_id"], r["rejected_node_id"]) for r in jsonl(o / "pairs.jsonl")}
    assert ("t1/r.2.0", "t1/r.2.1") in got and ("t1/r.0", "t1/r.2") not in got


def test_dedupe_and_kto_split():
    base = {"prompt": [{"role": "user", "content": "hi"}], "tree_id": "t", "chosen_strategy": "A", "rejected_strategy": "B"}
    a = {**base, "chosen": [{"role": "assistant", "content": "(A) x"}], "rejected": [{"role": "assistant", "content": "(B) y"}],
         "chosen_node_id": "t/r.0", "rejected_node_id": "t/r.1"}
    b = {**a, "rejected_node_id": "t/r.2"}  # same text as a under another node: a duplicate
    c = {**a, "rejected": [{"role": "assistant", "content": "(B) z"}], "rejected_node_id": "t/r.3"}
    pairs, dropped = dedupe_pairs([a, b, c])
    assert [p["rejected_node_id"] for p in pairs] == ["t/r.1", "t/r.3"] and dropped == 1
    kto, kdrop = kto_records(pairs)
    assert [(k["completion"][0]["content"], k["label"]) for k in kto] == [("(A) x", True), ("(B) y", False), ("(B) z", False)]
    assert kdrop == 1


def test_empty_database_is_not_a_crash(fx, tmp_path: Path):
    db = fx.write_db(tmp_path / "e.duckdb", [("t2", fx.T2_NODES, fx.seed_for("I feel alone."), "done")])
    o = tmp_path / "o"
    text = run("extract", "--db", str(db), "--out", str(o))
    assert "t2: no end node with Q >= 0.5" in text
    assert (o / "pairs.jsonl").read_text() == "" and json.loads((o / "manifest.json").read_text())["counts"]["pairs"] == 0


def test_bad_inputs_give_one_line_errors(tmp_path: Path):
    res = CliRunner().invoke(cli, ["extract", "--db", str(tmp_path / "missing.duckdb"), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "database file not found" in res.output
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE x (a INT)").close()
    res = CliRunner().invoke(cli, ["extract", "--db", str(other), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "not an escpro build file" in res.output
    assert "Traceback" not in res.output


def test_llamafactory_layout(out: Path):
    lf = out / "llamafactory"
    info = json.loads((lf / "dataset_info.json").read_text())
    assert set(info) == {"escpro_pairs", "escpro_kto", "escpro_sft"}
    tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
    assert info["escpro_pairs"] == {
        "file_name": "escpro_pairs.json", "formatting": "sharegpt", "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
        "tags": tags,
    }
    assert info["escpro_kto"]["columns"]["kto_tag"] == "kto_tag" and "ranking" not in info["escpro_sft"]
    for name, entry in info.items():
        rows = json.loads((lf / entry["file_name"]).read_text())
        assert rows, name
        for row in rows:
            conv = row["conversations"]
            # LLaMA-Factory's sharegpt reader: human at even positions, gpt at odd ones
            assert [m["from"] for m in conv] == [("human", "gpt")[i % 2] for i in range(len(conv))]
            assert row["system"].startswith("You are an emotional supporter")
            if entry.get("ranking"):
                assert len(conv) % 2 == 1 and row["chosen"]["from"] == row["rejected"]["from"] == "gpt"
            else:
                assert len(conv) % 2 == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["llamafactory_dropped_turns"] > 0  # the seed's leading greeting


def test_files_load_with_datasets_in_trl_shapes(out: Path):
    datasets = pytest.importorskip("datasets")
    from trl.data_utils import is_conversational

    pairs = datasets.load_dataset("json", data_files=str(out / "pairs.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(pairs.column_names) and len(pairs) == 7
    assert is_conversational(pairs[0])
    kto = datasets.load_dataset("json", data_files=str(out / "kto.jsonl"), split="train")
    assert {"prompt", "completion", "label"} <= set(kto.column_names)
    assert kto.features["label"].dtype == "bool" and is_conversational(kto[0])
    sft = datasets.load_dataset("json", data_files=str(out / "sft.jsonl"), split="train")
    assert "messages" in sft.column_names and is_conversational(sft[0])


@pytest.mark.slow
def test_trl_trainers_train_on_the_files(out: Path, tmp_path: Path):
    """DPO, KTO and SFT each take one optimisation step on the files, unconverted."""
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from transformers import AutoModelForCausalLM

    from escpro.tiny_model import ensure_tiny_model
    from escpro.train.models import load_tokenizer

    path = ensure_tiny_model()
    tok = load_tokenizer(str(path))
    common = dict(output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=2, use_cpu=True,
                  bf16=False, gradient_checkpointing=False, report_to=[], save_strategy="no", max_length=2048)
    for trainer, config, fname, extra in (
        (trl.DPOTrainer, trl.DPOConfig, "pairs.jsonl", {}),
        (trl.KTOTrainer, trl.KTOConfig, "kto.jsonl", {}),
        (trl.SFTTrainer, trl.SFTConfig, "sft.jsonl", {"assistant_only_loss": True}),
    ):
        ds = datasets.load_dataset("json", data_files=str(out / fname), split="train")
        model = AutoModelForCausalLM.from_pretrained(path)
        result = trainer(model=model, args=config(**common, **extra), train_dataset=ds, processing_class=tok).train()
        assert result.global_step == 1 and result.training_loss == result.training_loss  # not NaN


def test_entry_points_match_the_commands(db_path: Path, tmp_path: Path):
    """run_extract / run_stats are what the commands print (the demo calls them directly)."""
    from escpro.config import load_config
    from escpro.extract.run import ExtractOptions, run_extract
    from escpro.extract.stats_run import StatsOptions, run_stats

    cfg = load_config(None)
    res = run_extract(ExtractOptions(db=db_path, out=tmp_path / "lib", config=cfg))
    assert (res.counts["pairs"], res.counts["sft"], res.counts["trees_skipped"]) == (7, 3, 1)
    assert len(res.extraction.trees) == 3 and res.manifest["counts"] == res.counts
    printed = json.loads(run("extract", "--db", str(db_path), "--out", str(tmp_path / "cli"), "--json"))
    assert printed["counts"] == res.counts and set(printed) == set(res.to_dict())
    st = run_stats(StatsOptions(db=db_path, extract=cfg.extract, out=tmp_path / "stats"))
    assert st.table5["esc_pro"]["dialogues"] == 3 and [f.name for f in st.files][:2] == ["table5.csv", "stages.csv"]
    assert all(f.is_file() for f in st.files)
    printed = json.loads(run("stats", "--db", str(db_path), "--json"))
    assert printed["table5"] == json.loads(json.dumps(st.table5)) and "files" not in printed
    assert "files" not in json.loads((tmp_path / "stats" / "stats.json").read_text())
