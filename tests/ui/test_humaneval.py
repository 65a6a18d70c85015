"""The human-evaluation pieces on their own: Fleiss' kappa against the textbook formula, the
verdict store (randomised, recorded, durable), the study checks and `escpro ui export`."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.errors import DataError
from escpro.ui import agreement
from escpro.ui.judgements import JudgementStore, Verdict, outcome_of
from escpro.ui.study import CRITERION_KEYS, load_study


def v(annotator, task, outcome, t="2026-01-01T00:00:00", crit="acceptance"):
    return Verdict(annotator, task, f"i-{task}", "x", "y", crit, {"win": "A", "lose": "B", "tie": "tie"}[outcome],
                   outcome, "x", t)


def test_fleiss_matches_the_formula_and_handles_degenerate_tables(hand_kappa):
    table = [[2, 1, 0], [0, 3, 0], [1, 1, 1], [3, 0, 0], [0, 0, 3]]
    assert agreement.fleiss(np.array(table)) == pytest.approx(hand_kappa(table))
    assert agreement.fleiss(np.array([[2, 0, 0], [2, 0, 0]])) is None  # everyone always "win": undefined


def test_table_percentages_and_kappa_subjects(hand_kappa):
    vs = [v("a", "t1", "win"), v("b", "t1", "win"), v("a", "t2", "tie"), v("b", "t2", "lose"),
          v("a", "t3", "win"), v("b", "t3", "win"), v("a", "t4", "lose")]  # t4 rated once: no kappa subject
    (row,) = agreement.table(vs, ("acceptance",))
    assert (row.verdicts, row.win, row.tie, row.lose) == (7, 4, 1, 2)
    assert (row.win_pct, row.tie_pct, row.lose_pct) == (57.14, 14.29, 28.57)
    assert (row.kappa_tasks, row.kappa_raters, row.annotators) == (3, 2, 2)
    assert row.kappa == pytest.approx(hand_kappa([[2, 0, 0], [0, 1, 1], [2, 0, 0]]))
    text = agreement.to_text([row])
    assert "x vs. y" in text and "57.14" in text
    # three raters on most tasks: the first three verdicts (by time) of a task rated four times
    vs3 = [v(r, t, o, f"2026-01-0{k}") for t, outs in (("t1", "wwtl"), ("t2", "lll"), ("t3", "wtw"))
           for k, (r, o) in enumerate(zip("abcd", outs), 1)
           for o in [{"w": "win", "t": "tie", "l": "lose"}[o]]]
    counts, m = agreement.kappa_counts(vs3)
    assert m == 3 and counts.tolist() == [[2, 1, 0], [0, 0, 3], [2, 1, 0]]


def test_outcome_is_from_system_x_side():
    assert outcome_of("A", a_system="x", system_x="x") == "win"
    assert outcome_of("A", a_system="y", system_x="x") == "lose"
    assert outcome_of("B", a_system="y", system_x="x") == "win"
    assert outcome_of("tie", a_system="y", system_x="x") == "tie"


def test_assignments_random_but_fixed(tmp_path):
    store = JudgementStore(tmp_path / "j.sqlite")
    firsts = Counter(store.assignment("s", "ann", f"t{i}", ("x", "y")).a_system for i in range(200))
    assert 60 < firsts["x"] < 140 and firsts["x"] + firsts["y"] == 200  # both orders, about half each
    first = store.assignment("s", "ann", "t7", ("x", "y"))
    assert all(store.assignment("s", "ann", "t7", ("x", "y")) == first for _ in range(20))
    store.close()
    again = JudgementStore(tmp_path / "j.sqlite")
    assert again.assignment("s", "ann", "t7", ("x", "y")) == first
    again.close()


def test_a_verdict_is_on_disk_when_record_returns(tmp_path):
    import sqlite3

    store = JudgementStore(tmp_path / "j.sqlite")
    a = store.assignment("s", "ann", "t1", ("x", "y"))
    store.record("s", "ann", "t1", "i1", ("x", "y"), a, "acceptance", "tie")
    other = sqlite3.connect(str(tmp_path / "j.sqlite"))  # another connection sees it: committed
    assert other.execute("SELECT choice, outcome FROM verdicts").fetchall() == [("tie", "tie")]
    store.record("s", "ann", "t1", "i1", ("x", "y"), a, "acceptance", "A")  # a change of mind replaces it
    assert other.execute("SELECT count(*), max(choice) FROM verdicts").fetchall() == [(1, "A")]
    other.close()
    store.close()


def test_not_a_judgement_file(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataError, match="cannot use as the judgement file"):
        JudgementStore(bad)


def test_study_needs_one_test_set(ui_data, tmp_path):
    st = load_study([ui_data.eval_sft, ui_data.eval_cso])
    assert len(st.tasks) == 3 and all((t.system_x, t.system_y) == ("cso", "sft") for t in st.tasks)
    assert load_study([ui_data.eval_sft, ui_data.eval_cso]).tasks == st.tasks  # same order on restart
    assert len(load_study([ui_data.eval_sft, ui_data.eval_cso], items=2).tasks) == 2
    other = tmp_path / "other"
    shutil.copytree(ui_data.eval_cso, other)
    meta = json.loads((other / "run.json").read_text())
    meta["identity"]["testset_sha256"] = "0" * 64
    (other / "run.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="same test set"):
        load_study([ui_data.eval_sft, other])
    with pytest.raises(DataError, match="not an `escpro eval run` directory"):
        load_study([ui_data.eval_sft, tmp_path])
    dup = tmp_path / "x" / "sft"
    shutil.copytree(ui_data.eval_sft, dup)
    with pytest.raises(DataError, match="named 'sft'"):
        load_study([ui_data.eval_sft, dup])


def test_cli_refusals_and_check(ui_data, tmp_path):
    run = CliRunner().invoke
    r = run(cli, ["ui", "--db", str(ui_data.db), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "not a loopback address" in r.output and "--token" in r.output
    r = run(cli, ["ui", "--db", str(ui_data.db), "--host", "0.0.0.0", "--token", "short"])
    assert r.exit_code == 2 and "16 characters" in r.output
    r = run(cli, ["ui", "--evals", str(ui_data.eval_sft)])
    assert r.exit_code == 2 and "two or more" in r.output
    r = run(cli, ["ui"])
    assert r.exit_code == 2 and "nothing to serve" in r.output
    notdb = tmp_path / "x.duckdb"
    notdb.write_text("nope")
    r = run(cli, ["ui", "--db", str(notdb), "--check"])
    assert r.exit_code != 0 and r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
    j = tmp_path / "j.sqlite"
    r = run(cli, ["ui", "--db", str(ui_data.db), "--evals", str(ui_data.eval_sft), "--evals", str(ui_data.eval_cso),
                  "--judgements", str(j), "--check", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["url"] == "http://127.0.0.1:8080/" and info["study"]["tasks"] == 3 and j.is_file()
    r = run(cli, ["ui", "--db", str(ui_data.db), "--host", "0.0.0.0", "--check", "--json"],
            env={"ESCPRO_UI_TOKEN": "a-token-from-the-environment"})
    assert r.exit_code == 0, r.output


def test_export_cli(tmp_path):
    j = tmp_path / "j.sqlite"
    store = JudgementStore(j)
    store.register_study("s1", json.dumps({"study_id": "s1", "systems": []}))
    plan = {"alice": ["A", "A", "tie"], "bob": ["A", "B", "tie"]}
    for ann, picks in plan.items():
        for k, pick in enumerate(picks):
            a = store.assignment("s1", ann, f"t{k}", ("cso", "sft"))
            for crit in CRITERION_KEYS:
                store.record("s1", ann, f"t{k}", f"i{k}", ("cso", "sft"), a, crit, pick)
    store.close()
    r = CliRunner().invoke(cli, ["ui", "export", "--judgements", str(j), "--out", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert [a["name"] for a in got["annotators"]] == ["alice", "bob"]
    rows = json.loads((tmp_path / "out" / "human_eval.json").read_text())["rows"]
    assert len(rows) == 4 and (tmp_path / "out" / "human_eval.csv").read_text().count("\n") == 5
    raw = (tmp_path / "out" / "verdicts.csv").read_text().splitlines()
    assert len(raw) == 1 + 2 * 3 * 4 and raw[0].startswith("annotator,item_id,task_id")
    r = CliRunner().invoke(cli, ["ui", "export", "--judgements", str(tmp_path / "missing.sqlite")])
    assert r.exit_code == 1 and "no such judgement file" in r.output
    r = CliRunner().invoke(cli, ["ui", "export", "--judgements", str(j), "--study", "nope"])
    assert r.exit_code == 1 and "no study 'nope'" in r.output


def test_port_in_use_is_one_line(ui_data):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = CliRunner().invoke(cli, ["ui", "--db", str(ui_data.db), "--port", str(port)])
    assert r.exit_code == 2 and "cannot listen on 127.0.0.1" in r.output and "--port" in r.output
