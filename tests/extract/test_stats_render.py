"""Stats (Table 5, stages, search and call costs) on the hand-built database, with the numbers
worked out by hand in the comments; tree rendering."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.extract import stats as S
from escpro.extract.render import render_dot, render_text
from escpro.extract.rules import extract_tree
from escpro.taxonomy import load_taxonomy


def run(*args: str):
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_stage_formula():
    # utterance i of n -> floor(5 i / n) / 5: six stages, only the last utterance reaches 1.0
    assert [S.stage_of(i, 10) for i in range(1, 11)] == [0.0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8, 1.0]
    assert S.stage_labels() == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    with pytest.raises(ValueError):
        S.stage_of(0, 3)


def test_stats_json_matches_hand_computed(db_path: Path, tmp_path: Path):
    out = tmp_path / "stats"
    data = json.loads(run("stats", "--db", str(db_path), "--out", str(out), "--json"))
    t5 = data["table5"]
    # seeds of the 3 done trees: 6 + 1 + 1 utterances, 19 + 3 + 3 words
    assert t5["seed"] == {"dialogues": 3, "utterances": 8, "mean_dialogue_length": pytest.approx(8 / 3),
                          "mean_utterance_words": pytest.approx(25 / 8)}
    # valid paths A = r.0>r.0.0, B = r.0>r.0.2, C = r.1>r.1.0, each counted from "I lost my job."
    # to its last supporter turn (4 utterances): the seed greeting is not a preferred utterance
    # and the closing words ("Thanks, bye.", "True. Bye.") are not seeker utterances
    assert t5["esc_pro_seeker"] == {"utterances": 6, "mean_utterance_words": pytest.approx(18 / 6)}
    assert t5["esc_pro_preferred"] == {"utterances": 6, "mean_utterance_words": pytest.approx(30 / 6)}
    # each path's nodes carry 3 rejected siblings: {r.2, r.3} + r.0.1 / r.0.1 / r.1.1 (14 words each)
    assert t5["esc_pro_non_preferred"] == {"utterances": 9, "mean_utterance_words": pytest.approx(42 / 9)}
    assert t5["esc_pro"] == {"dialogues": 3, "utterances": 21, "mean_dialogue_length": pytest.approx(12 / 3),
                             "mean_utterance_words": pytest.approx(90 / 21)}
    assert t5["unique"] == {"preferred_nodes": 5, "non_preferred_nodes": 4}

    esc = {(r["stage"], r["strategy"]): r["count"] for r in data["stages"] if r["source"] == "esc_pro" and r["count"]}
    # each counted dialogue ends with its last supporter turn: i = n = 4 is stage 1.0
    assert esc == {(0.4, "Emotional Validation"): 2, (0.4, "Empathetic Statements"): 1, (1.0, "Affirmation"): 1,
                   (1.0, "Provide Different Perspectives"): 1, (1.0, "Share Information"): 1}
    seed = {(r["stage"], r["strategy"]): r["count"] for r in data["stages"] if r["source"] == "seed" and r["count"]}
    assert seed == {(0.4, "Emotional Validation"): 1, (1.0, "Affirmation"): 1}

    t1 = next(t for t in data["trees"] if t["tree_id"] == "t1")
    assert (t1["nodes"], t1["expanded"], t1["unexpanded"], t1["end_nodes"], t1["max_depth"]) == (12, 11, 1, 5, 2)
    assert (t1["valid_paths"], t1["pairs"], t1["q_at_least_theta"], t1["iterations"]) == (3, 7, 6, 100)
    assert t1["q_min"] == -0.5 and t1["q_max"] == 1.0 and t1["q_median"] == 0.5  # 6th of 11 sorted Q values

    calls = {c["role"]: c for c in data["calls"]}
    assert (calls["strategy"]["calls"], calls["strategy"]["ok"], calls["strategy"]["invalid"]) == (2, 1, 1)
    assert (calls["supporter"]["prompt_tokens"], calls["supporter"]["completion_tokens"]) == (420, 100)
    assert calls["supporter"]["latency_mean_ms"] == pytest.approx(200.0)
    assert (calls["reward"]["failed"], calls["reward"]["timeout"]) == (1, 1)

    for name in ("table5.csv", "stages.csv", "trees.csv", "calls.csv", "stats.json"):
        assert (out / name).stat().st_size > 0
    for png in ("stages.png", "q_hist.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png).stat().st_size > 5000
    rows = list(csv.DictReader(open(out / "table5.csv")))
    assert rows[0]["row"] == "Dialogues" and rows[0]["ESC-Pro"] == "3"


def test_stats_text_output(db_path: Path):
    text = run("stats", "--db", str(db_path))
    assert "Table 5" in text and "ESC-Pro(+)" in text and "Trees without a valid path: 2 (t2, t3)" in text
    assert "supporter" in text and "strategy" in text


def test_text_tree_marks_and_collapses(t1):
    res = extract_tree(t1, 0.5)
    text = render_text(t1, res, load_taxonomy("cso8"), show_text=20)
    lines = text.splitlines()
    line = next(x for x in lines if x.rstrip().endswith("r.0.0  | You are strong.") or " r.0.0 " in x)
    assert "[*EG ]" in line and "Aff" in line and "Q=+1.000" in line and "N=100" in line
    assert any("[   x] CP" in x and "r.0.1" in x for x in lines)  # rejected sibling
    assert any("+1 unexpanded (RNT 0.10)" in x for x in lines)
    assert not any(" r.0.3" in x for x in lines)


def test_large_tree_stays_readable(fx):
    # a fan-out tree: every expanded node has 8 children, 7 of them unexpanded, depth 6
    spec = [("r", None, None, 0.5, 50, "root", None, "hi", True)]
    frontier = ["r"]
    for depth in range(6):
        nxt = []
        for p in frontier:
            for c in range(8):
                sfx = f"{p}.{c}"
                kind = "end" if (depth == 5 and c == 0) else ("expanded" if c == 0 else "unexpanded")
                spec.append((sfx, fx.EV, 0.1, 0.9 if c == 0 else None, 3 if c == 0 else 0, kind,
                             "reply" if c == 0 else None, "ok" if c == 0 else None, False))
                if c == 0:
                    nxt.append(sfx)
        frontier = nxt
    tree = fx.make_tree("big", spec, None)
    text = render_text(tree, extract_tree(tree, 0.5), load_taxonomy("cso8"))
    assert len(tree.nodes) == 49 and len(text.splitlines()) == 3 + 6 * 2  # one node + one collapsed line per level
    dot = render_dot(tree, extract_tree(tree, 0.5), load_taxonomy("cso8"))
    assert dot.count("+7 unexpanded") == 6


def test_tree_command_formats(db_path: Path, tmp_path: Path):
    assert "t1" in run("tree", "--db", str(db_path))
    text = run("tree", "--db", str(db_path), "--tree", "t1")
    assert "valid paths 3  pairs 7" in text
    dot = run("tree", "--db", str(db_path), "--tree", "t1", "--format", "dot")
    assert dot.startswith('digraph "t1"') and "penwidth=2.5" in dot and "peripheries=2" in dot
    res = CliRunner().invoke(cli, ["tree", "--db", str(db_path), "--tree", "nope"])
    assert res.exit_code != 0 and "no tree 'nope'" in res.output
    if shutil.which("dot") is None:
        res = CliRunner().invoke(cli, ["tree", "--db", str(db_path), "--tree", "t1", "--format", "svg"])
        assert res.exit_code != 0 and "Graphviz" in res.output
    else:
        svg = tmp_path / "t1.svg"
        run("tree", "--db", str(db_path), "--tree", "t1", "--format", "svg", "--out", str(svg))
        assert "<svg" in svg.read_text()
        png = tmp_path / "t1.png"
        run("tree", "--db", str(db_path), "--tree", "t1", "--format", "png", "--out", str(png))
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_counted_turns_cut_greeting_and_closing_words():
    from escpro.dialogue import Utterance as U

    turns = [U("supporter", "Hi!"), U("seeker", "I lost my job."), U("supporter", "Hard.", "EV"),
             U("seeker", "Yes."), U("supporter", "You can do it.", "Aff"), U("seeker", "Thanks, bye.")]
    assert S.counted_turns(turns) == turns[1:5]
    assert S.counted_turns(turns[:2]) == []  # no supporter turn after the first seeker turn
