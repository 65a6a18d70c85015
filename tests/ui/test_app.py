"""Every endpoint of `escpro ui` with FastAPI's TestClient, on a real sim build, its extraction and
two real eval runs (tests/ui/conftest.py)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from escpro.extract.pipeline import load_trees
from escpro.extract.render import Marks
from escpro.extract.rules import extract_tree
from escpro.extract.tree import history_before, node_turns
from escpro.taxonomy import load_taxonomy
from escpro.ui.app import create_app
from escpro.ui.options import UiOptions
from tests.helpers import load_script

BASE = "http://127.0.0.1"
HTML = {"accept": "text/html"}


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def opts(ui_data, tmp_path) -> UiOptions:
    return UiOptions(db=ui_data.db, pairs=ui_data.pairs, evals=(ui_data.eval_sft, ui_data.eval_cso),
                     judgements=tmp_path / "judgements.sqlite")


@pytest.fixture
def client(opts):
    with TestClient(create_app(opts), base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def trees(ui_data):
    con = duckdb.connect(str(ui_data.db), read_only=True)
    got = {t.tree_id: t for t in load_trees(con)}
    con.close()
    return got


def test_tree_list_counts_match_extract(client, trees):
    got = client.get("/api/trees").json()
    assert got["total"] == len(trees) == 3
    for row in got["trees"]:
        res = extract_tree(trees[row["tree_id"]], 0.5, "paper")
        assert (row["valid_paths"], row["pairs"], row["nodes"]) == (len(res.paths), len(res.pairs), len(trees[row["tree_id"]].nodes))
    with_paths = [r for r in got["trees"] if r["valid_paths"] >= 1]
    assert with_paths, "the tiny sim build should give a tree with a valid path"
    assert client.get("/api/trees", params={"min_valid": 1}).json()["matched"] == len(with_paths)
    big = max(r["nodes"] for r in got["trees"])
    assert [r["nodes"] for r in client.get("/api/trees", params={"min_nodes": big}).json()["trees"]] == [big]
    assert client.get("/api/trees", params={"status": "failed"}).json()["matched"] == 0
    one = got["trees"][0]["tree_id"]
    assert [r["tree_id"] for r in client.get("/api/trees", params={"q": one}).json()["trees"]] == [one]
    desc = client.get("/api/trees", params={"sort": "nodes", "desc": "true"}).json()["trees"]
    assert [r["nodes"] for r in desc] == sorted((r["nodes"] for r in desc), reverse=True)
    assert client.get("/api/trees", params={"status": "bogus"}).status_code == 400
    assert client.get("/api/trees", params={"min_nodes": -1}).status_code == 422
    page = client.get("/trees", params={"min_valid": 1}, headers=HTML)
    assert page.status_code == 200 and all(r["tree_id"] in page.text for r in with_paths)


def test_tree_children_marks_and_folding_data(client, trees):
    tid, tree = next(iter(trees.items()))
    res = extract_tree(tree, 0.5, "paper")
    marks = Marks.of(tree, res)
    summary = client.get(f"/api/trees/{tid}").json()
    assert summary["valid_paths"] == [list(p.node_ids) for p in res.paths]
    for parent in [tree.root_id, *[n for n in tree.children if n != tree.root_id][:5]]:
        got = client.get(f"/api/trees/{tid}/children", params={"node": parent}).json()["children"]
        assert [k["id"] for k in got] == tree.children.get(parent, [])
        for k in got:
            node = tree.nodes[k["id"]]
            assert (k["kind"], k["q"], k["n"], k["prior"]) == (node.kind, node.q, node.n, node.prior)
            assert k["on_path"] == (node.node_id in marks.on_path)
            assert k["rejected"] == (node.node_id in marks.rejected)
            assert (k["end"], k["gold"]) == (node.ended, node.is_gold)
            assert k["children"] == len(tree.children.get(node.node_id, []))
    assert client.get(f"/api/trees/{tid}/children", params={"node": f"{tid}/r.99"}).status_code == 404
    assert client.get("/api/trees/nope/children", params={"node": "nope/r"}).status_code == 404
    page = client.get(f"/trees/{tid}", headers=HTML)
    assert page.status_code == 200 and f'data-tree="{tid}"' in page.text


def test_node_detail_dialogue_judgements_calls(client, trees, ui_data):
    tax = load_taxonomy("cso8")
    con = duckdb.connect(str(ui_data.db), read_only=True)
    judged = con.execute("SELECT node_id, tree_id, count(*) FROM judgements GROUP BY ALL ORDER BY 3 DESC LIMIT 1").fetchone()
    calls = con.execute("SELECT count(*) FROM llm_calls WHERE node_id = ?", [judged[0]]).fetchone()[0]
    con.close()
    tree = trees[judged[1]]
    node = tree.nodes[judged[0]]
    d = client.get(f"/api/trees/{judged[1]}/node", params={"id": judged[0]}).json()
    want = history_before(tree, node.node_id, tax) + node_turns(tree, node, tax)
    assert [(t["speaker"], t["text"], t["strategy"]) for t in d["dialogue"]] == [
        (u.speaker, u.text, u.strategy) for u in want]
    assert len(d["judgements"]) == judged[2]
    assert all(set(j) >= {"empathy", "information", "humanoid", "strategy_score", "reward"} for j in d["judgements"])
    own = [c for c in d["calls"] if c["node_id"] == node.node_id]
    assert len(own) == calls > 0
    assert {c["role"] for c in d["calls"] if c["node_id"] != node.node_id} <= {"strategy"}
    assert d["path"] == [a.node_id for a in tree.ancestry(node.node_id)]
    root = client.get(f"/api/trees/{judged[1]}/node", params={"id": tree.root_id}).json()
    assert root["dialogue"][-1]["speaker"] == "seeker" and root["node"]["parent"] is None


def test_pairs_browser_traces_to_nodes(client, ui_data, trees):
    lines = [json.loads(x) for x in (ui_data.pairs / "pairs.jsonl").read_text().splitlines() if x.strip()]
    got = client.get("/api/pairs", params={"limit": 500}).json()
    assert got["total"] == len(lines) > 0
    for p, rec in zip(got["pairs"], lines):
        assert (p["chosen_node_id"], p["rejected_node_id"]) == (rec["chosen_node_id"], rec["rejected_node_id"])
        tree = trees[p["tree_id"]]
        assert tree.nodes[p["chosen_node_id"]].parent_id == tree.nodes[p["rejected_node_id"]].parent_id
    tid = lines[0]["tree_id"]
    assert client.get("/api/pairs", params={"tree": tid}).json()["total"] == sum(r["tree_id"] == tid for r in lines)
    one = client.get("/api/pairs/0").json()
    assert one["prompt"] == lines[0]["prompt"] and one["index"] == 0
    assert client.get(f"/api/pairs/{len(lines)}").status_code == 404
    page = client.get("/pairs/0", headers=HTML).text
    assert f"/trees/{tid}?focus=" in page and "Chosen" in page
    assert client.get("/pairs", params={"tree": tid}, headers=HTML).status_code == 200


def _task_page(client, annotator: str) -> tuple[str, str, str]:
    page = client.get("/eval/task", params={"annotator": annotator}, headers=HTML)
    assert page.status_code == 200, page.text
    task = re.search(r'data-task="([^"]+)"', page.text)
    a = re.search(r'id="reply-a"><h3>Reply A</h3><p>(.*?)</p>', page.text, re.S).group(1)
    b = re.search(r'id="reply-b"><h3>Reply B</h3><p>(.*?)</p>', page.text, re.S).group(1)
    return (task.group(1) if task else ""), a, b


def test_eval_blind_task_is_recorded_and_survives_restart(client, opts, ui_data):
    study = client.get("/api/eval/study").json()
    assert study["tasks"] == 3 and [s["key"] for s in study["systems"]] == ["cso", "sft"]
    task, a, b = _task_page(client, "alice")
    assert "cso" not in task and "sft" not in task  # the page names neither system
    for crit, choice in (("acceptance", "A"), ("effectiveness", "tie")):
        r = client.post("/api/eval/verdict", json={"annotator": "alice", "task_id": task, "criterion": crit, "choice": choice})
        assert r.json() == {"saved": True, "criteria_done": 1 if crit == "acceptance" else 2, "complete": False}
    assert client.post("/api/eval/comment", json={"annotator": "alice", "task_id": task, "comment": "B is <b>odd</b>"}).json() == {"saved": True}
    import sqlite3

    con = sqlite3.connect(str(opts.judgements))
    a_sys, b_sys = con.execute("SELECT a_system, b_system FROM assignments WHERE task_id=?", [task]).fetchone()
    item = con.execute("SELECT item_id FROM verdicts WHERE task_id=? LIMIT 1", [task]).fetchone()[0]
    rows = con.execute("SELECT criterion, choice, outcome, a_system FROM verdicts ORDER BY criterion").fetchall()
    con.close()
    preds = {k: {json.loads(x)["id"]: json.loads(x)["response_pred"] for x in (d / "predictions.jsonl").read_text().splitlines()}
             for k, d in (("sft", ui_data.eval_sft), ("cso", ui_data.eval_cso))}
    import html

    assert html.unescape(a) == preds[a_sys][item] and html.unescape(b) == preds[b_sys][item]
    win_if_a = "win" if a_sys == "cso" else "lose"
    assert rows == [("acceptance", "A", win_if_a, a_sys), ("effectiveness", "tie", "tie", a_sys)]
    # a new server over the same file: same task, same A/B order, the verdicts and comment kept
    with TestClient(create_app(opts), base_url=BASE) as again:
        task2, a2, b2 = _task_page(again, "alice")
        assert (task2, a2, b2) == (task, a, b)
        page = again.get("/eval/task", params={"annotator": "alice", "task": task}, headers=HTML).text
        assert 'value="A" checked' in page and 'value="tie" checked' in page
        assert "B is &lt;b&gt;odd&lt;/b&gt;" in page  # escaped


def test_eval_bad_requests(client):
    task, _, _ = _task_page(client, "bob")
    ok = {"annotator": "bob", "task_id": task, "criterion": "acceptance", "choice": "A"}
    assert client.post("/api/eval/verdict", json={**ok, "choice": "C"}).status_code == 422
    assert client.post("/api/eval/verdict", json={**ok, "criterion": "alignment"}).status_code == 422
    assert client.post("/api/eval/verdict", json={**ok, "task_id": "t000"}).status_code == 404
    assert client.post("/api/eval/verdict", json={**ok, "annotator": "<script>"}).status_code == 400
    assert client.post("/api/eval/verdict", content=json.dumps(ok), headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/api/eval/verdict", json=ok, headers={"origin": "http://evil.example"}).status_code == 403
    assert client.post("/api/eval/verdict", json=ok, headers={"origin": BASE}).status_code == 200
    assert client.get("/eval/task", params={"annotator": "bob", "task": "nope"}, headers=HTML).status_code == 404


def test_eval_pages_results_csv_json(client):
    for name, picks in (("alice", ["A", "A", "B", "tie"]), ("bob", ["A", "tie", "B", "B"])):
        for _ in range(3):
            task, _, _ = _task_page(client, name)
            for crit, choice in zip(("acceptance", "effectiveness", "sensitivity", "satisfaction"), picks):
                assert client.post("/api/eval/verdict", json={"annotator": name, "task_id": task, "criterion": crit,
                                                              "choice": choice}).status_code == 200
    assert "All done" in client.get("/eval/task", params={"annotator": "alice"}, headers=HTML).text
    js = client.get("/api/eval/results").json()
    rows = {r["criterion"]: r for r in js["rows"]}
    assert set(rows) == {"acceptance", "effectiveness", "sensitivity", "satisfaction"}
    assert all(r["verdicts"] == 6 and r["annotators"] == 2 and r["kappa_tasks"] == 3 for r in rows.values())
    assert rows["acceptance"]["tie_pct"] == 0.0 and rows["satisfaction"]["tie"] == 3
    csv_text = client.get("/eval/results.csv").text
    assert csv_text.splitlines()[0].startswith("system_x,system_y,criterion,verdicts,win,tie,lose")
    assert len(csv_text.splitlines()) == 5
    page = client.get("/eval/results", headers=HTML).text
    assert "Acceptance" in page and "cso" in page
    eval_page = client.get("/eval", headers=HTML).text
    assert "alice" in eval_page and "3 / 3" in eval_page
    assert client.get("/eval", params={"annotator": "carol"}, headers=HTML, follow_redirects=False).status_code == 303


def test_index_static_and_errors(client):
    page = client.get("/", headers=HTML)
    assert page.status_code == 200 and "Human evaluation" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for f in ("tree.js", "eval.js", "app.css"):
        assert client.get(f"/static/{f}").status_code == 200
    r = client.get("/trees/nope", headers=HTML)
    assert r.status_code == 404 and "no tree" in r.text and "<!doctype html>" in r.text
    assert client.get("/api/trees/nope").json()["error"].startswith("no tree")


def test_sections_absent_say_how_to_enable(ui_data, tmp_path):
    with TestClient(create_app(UiOptions(db=ui_data.db)), base_url=BASE) as c:
        assert "--pairs" in c.get("/api/pairs").json()["error"]
        assert "--evals" in c.get("/api/eval/study").json()["error"]
    with TestClient(create_app(UiOptions(pairs=ui_data.pairs)), base_url=BASE) as c:
        assert "--db" in c.get("/api/trees").json()["error"]
        assert c.get("/pairs/0", headers=HTML).status_code == 200  # untraceable without --db, still shown


def test_no_request_writes_the_tree_file(client, ui_data, trees):
    before = sha(ui_data.db)
    tid = next(iter(trees))
    for url in ("/api/trees", f"/api/trees/{tid}", f"/api/trees/{tid}/children?node={tid}/r",
                f"/api/trees/{tid}/node?id={tid}/r.0", "/trees", f"/trees/{tid}", "/pairs/0"):
        assert client.get(url).status_code == 200
    assert sha(ui_data.db) == before
    assert not Path(f"{ui_data.db}.wal").exists() and not Path(f"{ui_data.db}.readers").exists()


def test_token_required_everywhere(ui_data, tmp_path):
    token = "s3cret-token-0123456789"
    app = create_app(UiOptions(db=ui_data.db, host="0.0.0.0", token=token))
    with TestClient(app, base_url="http://192.0.2.10:8080") as c:
        for url in ("/", "/api/trees", "/static/app.css", "/trees"):
            assert c.get(url).status_code == 401
        assert c.get("/api/trees", headers={"authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        assert c.get("/api/trees", headers={"authorization": f"Bearer {token}"}).status_code == 200
        r = c.get(f"/trees?token={token}&min_valid=1", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/trees?min_valid=1"
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("/trees?min_valid=1").status_code == 200  # the cookie now


def test_loopback_refuses_foreign_host_header(ui_data):
    with TestClient(create_app(UiOptions(db=ui_data.db)), base_url="http://evil.example") as c:
        assert c.get("/api/trees").status_code == 400  # DNS rebinding
    with TestClient(create_app(UiOptions(db=ui_data.db)), base_url="http://localhost:8080") as c:
        assert c.get("/api/trees").status_code == 200


def test_large_tree_is_served_level_by_level(tmp_path):
    import time

    mod = load_script(Path(__file__).with_name("bigtree.py"))
    db = tmp_path / "big.duckdb"
    n = mod.write_big_tree(db, depth=4, width=8)
    assert n == 4681
    with TestClient(create_app(UiOptions(db=db)), base_url=BASE) as c:
        page = c.get("/trees/big-0", headers=HTML)
        assert page.status_code == 200 and "reply big-0/r.0" not in page.text  # no node is rendered up front
        assert len(page.content) < 10_000
        t = time.perf_counter()
        kids = c.get("/api/trees/big-0/children", params={"node": "big-0/r.3.1"}).json()["children"]
        assert time.perf_counter() - t < 2.0  # the parsed tree is cached: no re-read per expansion
        assert [k["id"] for k in kids] == [f"big-0/r.3.1.{i}" for i in range(8)]
        assert all(k["children"] == 8 for k in kids)
        (row,) = c.get("/api/trees").json()["trees"]
        assert (row["nodes"], row["valid_paths"]) == (4681, 1)
