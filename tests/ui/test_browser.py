"""A real browser (Debian's chromium via Playwright) against a real uvicorn server on loopback:
open a tree, expand a node, read its dialogue; two annotators complete three pairwise tasks; the
exported table and kappa match the verdicts given."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from escpro.cli import cli
from escpro.extract.pipeline import load_tree
from escpro.extract.tree import history_before, node_turns
from escpro.store import reader as dbio
from escpro.taxonomy import load_taxonomy
from escpro.ui.app import create_app
from escpro.ui.options import UiOptions
from escpro.ui.server import running

pytestmark = pytest.mark.slow

CRITS = ("acceptance", "effectiveness", "sensitivity", "satisfaction")
# What each annotator means to say about CSO (system x) against SFT, per task and criterion.
PLAN = {
    "alice": [("win", "win", "tie", "win"), ("win", "lose", "win", "tie"), ("tie", "win", "win", "win")],
    "bob": [("win", "tie", "tie", "win"), ("lose", "lose", "win", "tie"), ("tie", "win", "lose", "win")],
}


def test_tree_view_in_a_browser(browser, ui_data, tmp_path):
    app = create_app(UiOptions(db=ui_data.db, judgements=tmp_path / "j.sqlite"))
    rows = app.state.ui.trees.summaries()
    tid = max(rows, key=lambda r: r["valid_paths"])["tree_id"]
    with dbio.open_db(ui_data.db) as con:
        tree = load_tree(con, tid)
    tax = load_taxonomy("cso8")
    with running(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/trees")
        page.click(f"#tree-list a[href='/trees/{tid}']")
        page.wait_for_selector("#tree li[data-open='1'] > ul > li")  # the root's children, loaded on demand
        first = [li for li in page.query_selector_all("#tree li[data-open='1'] > ul > li[data-id]")]
        shown = [li.get_attribute("data-id") for li in first]
        assert shown == [k for k in tree.children[tree.root_id] if tree.nodes[k].kind != "unexpanded"]
        # expand a node that has children: its subtree arrives from the JSON endpoint
        parent = next(k for k in shown if tree.children.get(k))
        li = page.locator(f"#tree li[data-id='{parent}']")
        li.locator(":scope > .node .tog").click()
        page.wait_for_selector(f"#tree li[data-id='{parent}'][data-open='1'] > ul > li")
        kids = page.locator(f"#tree li[data-id='{parent}'] > ul > li[data-id]").evaluate_all("els => els.map(e => e.dataset.id)")
        expanded = [k for k in tree.children[parent] if tree.nodes[k].kind != "unexpanded"]
        assert kids == expanded
        folded = len(tree.children[parent]) - len(expanded)
        if folded:
            fold = page.locator(f"#tree li[data-id='{parent}'] > ul > li > .fold")
            assert fold.inner_text().startswith(f"+{folded} unexpanded")
        # click a child: the dialogue up to it, as escpro.extract reads the tree
        target = expanded[0] if expanded else parent
        page.locator(f"#tree li[data-id='{target}'] > .node").click()
        page.wait_for_selector("#dialogue .turn")
        turns = page.locator("#dialogue .turn").evaluate_all("els => els.map(e => e.lastChild.textContent)")
        node = tree.nodes[target]
        want = history_before(tree, target, tax) + node_turns(tree, node, tax)
        assert turns == [t.text or "(empty)" for t in want]
        assert page.locator("#detail h2").inner_text() == node.strategy
        # the valid paths open with one click, every node on them marked
        page.click("#expand-paths")
        on_path = {n for p in app.state.ui.trees.load(tid).result.paths for n in p.node_ids}
        if on_path:
            last = max(on_path, key=lambda n: tree.nodes[n].depth)
            page.wait_for_selector(f"#tree li[data-id='{last}'] > .node.on-path")
        page.close()


def test_two_annotators_three_tasks_then_export(browser, ui_data, tmp_path, hand_kappa):
    j = tmp_path / "human.sqlite"
    app = create_app(UiOptions(evals=(ui_data.eval_sft, ui_data.eval_cso), judgements=j))
    study = app.state.ui.study
    assert len(study.tasks) == 3
    given: dict[str, list[str]] = {c: [] for c in CRITS}
    by_task: dict[tuple[str, str], list[str]] = {}
    with running(app) as url:
        for annotator, plan in PLAN.items():
            page = browser.new_page()
            page.goto(f"{url}/eval")
            page.fill("#annotator", annotator)
            with page.expect_navigation():
                page.click("#start")
            for outcomes in plan:
                page.wait_for_selector("#task")
                task = page.locator("#task").get_attribute("data-task")
                con = sqlite3.connect(str(j))
                a_sys = con.execute("SELECT a_system FROM assignments WHERE annotator=? AND task_id=?",
                                    [annotator, task]).fetchone()[0]
                con.close()
                t = study.task(task)
                assert page.locator("#reply-a p").inner_text() == (study.systems[a_sys].replies[t.item_id] or "(no reply)")
                assert page.locator("#next").get_attribute("aria-disabled") == "true"
                for crit, outcome in zip(CRITS, outcomes):
                    cso_is_a = a_sys == "cso"
                    choice = "tie" if outcome == "tie" else ("A" if (outcome == "win") == cso_is_a else "B")
                    if annotator == "bob":  # bob answers with the keyboard: a / t / b
                        page.keyboard.press({"A": "a", "tie": "t", "B": "b"}[choice])
                    else:
                        page.check(f"input[name={crit}][value={choice}]")
                    page.wait_for_selector(f"tr[data-criterion={crit}] .saved:text-is('saved')")
                    given[crit].append(outcome)
                    by_task.setdefault((task, crit), []).append(outcome)
                page.fill("#comment", f"{annotator} on {task}")
                with page.expect_navigation():
                    page.locator("#next").click()
            page.wait_for_selector("#all-done")
            page.close()
    r = CliRunner().invoke(cli, ["ui", "export", "--judgements", str(j), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    rows = {x["criterion"]: x for x in json.loads((tmp_path / "out" / "human_eval.json").read_text())["rows"]}
    csv_lines = (tmp_path / "out" / "human_eval.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(CRITS)
    for crit in CRITS:
        row, outs = rows[crit], given[crit]
        assert (row["system_x"], row["system_y"], row["verdicts"]) == ("cso", "sft", 6)
        for o in ("win", "tie", "lose"):
            assert row[f"{o}_pct"] == round(100 * outs.count(o) / 6, 2)
        table = [[by_task[(t.task_id, crit)].count(o) for o in ("win", "tie", "lose")] for t in study.tasks]
        want = hand_kappa(table)
        assert row["kappa"] == pytest.approx(want) and row["kappa_tasks"] == 3 and row["kappa_raters"] == 2
        assert f"{crit}" in r.output
    con = sqlite3.connect(str(j))
    assert con.execute("SELECT count(*) FROM comments").fetchone()[0] == 6
    con.close()


def test_pair_links_open_the_tree_at_its_node(browser, ui_data, tmp_path):
    app = create_app(UiOptions(db=ui_data.db, pairs=ui_data.pairs))
    rec = app.state.ui.pairs.get(0)
    with running(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/pairs/0")
        with page.expect_navigation():
            page.click(f"a[href*='focus='][href*='{rec['tree_id']}']:text-is('{rec['rejected_node_id']}')")
        sel = page.wait_for_selector("#tree .node.sel")
        assert sel.evaluate("e => e.parentElement.dataset.id") == rec["rejected_node_id"]
        assert "rejected" in sel.get_attribute("class")  # marked as the rejected side of a pair
        page.wait_for_selector("#dialogue .turn.current")
        assert page.locator("#detail h2").inner_text() == rec["rejected_strategy"]
        page.close()
