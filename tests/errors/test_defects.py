"""The specific defects of issue 13 ("Every bad input is one line"), one test each, named after it."""

from __future__ import annotations

import json
import socket
import time

import duckdb
import pytest

from escpro import atomic
from escpro.console import escape_controls
from tests.errors.conftest import DEMO_SEEDS, TINY, assert_one_line_error, run_cli


def _extes(scene="work", user="I feel alone since the move.", ai="That sounds really hard."):
    return {"scene": scene, "description": "moved for a job",
            "content": [{"User": user}, {"AI Strategy": "Emotional Validation", "AI": ai},
                        {"User": "Yes, it is."}, {"AI Strategy": "Affirmation", "AI": "You reached out."},
                        {"User": "Thanks."}]}


def _write_seeds(path, records_json: str):
    path.write_text(records_json, encoding="utf-8")
    return path


def test_lone_utf16_surrogate_in_a_seed_is_a_counted_drop_at_load(tmp_path):
    good = json.dumps(_extes())
    bad = json.dumps(_extes(user="broken \ud800 text"))  # json.dumps writes the \ud800 escape
    seeds = _write_seeds(tmp_path / "s.json", f"[{good}, {bad}]")
    r = run_cli(["seeds", "inspect", seeds, "--json"])
    assert r.code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dialogues_kept"] == 1 and out["dropped"] == {"invalid_unicode": 1}
    # build decides the same way (before: inspect accepted it and build crashed writing it)
    db = tmp_path / "t.duckdb"
    r = run_cli(["build", "--seeds", seeds, "--db", db, "--config", TINY, "--backend", "sim",
                 "--random-seed", "0", "--no-progress", "--json"])
    assert r.code == 0, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM trees").fetchone()[0] == 1
    con.close()
    assert run_cli(["seeds", "inspect", seeds, "--strict"]).code == 1


def test_nan_in_a_seed_scene_is_a_counted_drop_not_an_empty_string(tmp_path):
    good = json.dumps(_extes())
    nan = json.dumps(_extes(scene=float("nan")))  # writes the NaN literal Python's json reads
    assert "NaN" in nan
    seeds = _write_seeds(tmp_path / "s.json", f"[{good}, {nan}]")
    r = run_cli(["seeds", "inspect", seeds, "--json"])
    out = json.loads(r.stdout)
    assert out["dialogues_kept"] == 1 and out["dropped"] == {"bad_field": 1}
    r = run_cli(["seeds", "inspect", seeds, "--strict"])
    assert "'scene' is NaN" in assert_one_line_error(r)


def test_terminal_escape_sequences_in_seed_text_are_escaped_by_tree(tmp_path):
    evil = "ok \x1b[2J\x1b]0;pwned\x07 done"
    seeds = _write_seeds(tmp_path / "s.json", json.dumps([_extes(ai=evil, user="hi \x1b[31mred")]))
    db = tmp_path / "t.duckdb"
    assert run_cli(["build", "--seeds", seeds, "--db", db, "--config", TINY, "--backend", "sim",
                    "--random-seed", "0", "--no-progress"]).code == 0
    con = duckdb.connect(str(db), read_only=True)
    tid = con.execute("SELECT tree_id FROM trees").fetchone()[0]
    con.close()
    r = run_cli(["tree", "--db", db, "--tree", tid, "--format", "text", "--show-text", "200"])
    assert r.code == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "\\e[2J" in r.stdout or "\\e[31m" in r.stdout


def test_escape_controls_shows_controls_and_keeps_text():
    assert escape_controls("plain text, äöü, 中文") == "plain text, äöü, 中文"
    assert escape_controls("a\x1b[31mb\x07c\rd\x9be") == "a\\e[31mb\\x07c\\rd\\x9be"
    assert escape_controls("line1\nline2\tx") == "line1\nline2\tx"
    assert escape_controls("x\ny", keep="") == "x\\ny"
    assert escape_controls("rtl \u202e override, lone \ud800") == "rtl \\u202e override, lone \\ud800"


def test_serve_port_out_of_range_is_rejected_not_bound_elsewhere():
    r = run_cli(["serve", "--engine", "sim", "--port", "70000"])
    assert "70000 is not in the range" in assert_one_line_error(r)
    assert r.code == 2


def test_serve_sim_on_a_port_in_use_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run_cli(["serve", "--engine", "sim", "--port", port])
    line = assert_one_line_error(r)
    assert f"--port {port}" in line and "in use" in line


@pytest.mark.parametrize("entry, match", [
    ({"base_url": "http://127.0.0.1:70000/v1", "model": "m"}, "port must be between 1 and 65535"),
    ({"base_url": "localhost:8000/v1", "model": "m"}, "not an http:// or https:// URL"),
    ({"base_url": "http://127.0.0.1:8000/v1", "model": "m", "structured": "guided"}, "reward.structured"),
])
def test_bad_endpoints_file_fails_at_once(tmp_path, good, entry, match):
    eps = tmp_path / "eps.json"
    eps.write_text(json.dumps({"reward": entry}))
    t0 = time.perf_counter()
    r = run_cli(["build", "--seeds", good["seeds"], "--db", tmp_path / "t.duckdb", "--config", TINY,
                 "--endpoints", eps, "--no-progress"])
    assert match in assert_one_line_error(r)
    assert time.perf_counter() - t0 < 10  # before: a non-http base_url was retried for 53 s
    assert not (tmp_path / "t.duckdb").exists()


def test_empty_sql_string_is_one_line(good):
    for sql in ("", "   ", ";"):
        assert "SQL statement is empty" in assert_one_line_error(run_cli(["query", "--db", good["db"], sql]))


def test_internal_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, good):
    import escpro.commands.query as q

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(q, "_run", boom)
    r = run_cli(["query", "--db", good["db"], "SELECT 1"])
    line = assert_one_line_error(r)
    assert "internal error: ZeroDivisionError: a bug" in line and "--log-level debug" in line
    r = run_cli(["query", "--db", good["db"], "SELECT 1", "--log-level", "debug"])
    assert r.code == 1 and "Traceback" in r.stderr and "ZeroDivisionError" in r.stderr


def test_usage_errors_are_one_line():
    for argv in (["nosuch"], ["build", "--nosuch"], ["query"], ["seeds", "inspect"]):
        r = run_cli(argv)
        assert_one_line_error(r, " ".join(argv))
        assert r.code == 2


def test_atomic_write_leaves_the_target_alone_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic.write_text(target, "new \ud800\n")
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as fh:
        fh.write("half of it")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    digest = atomic.write_text(target, "new\n")
    assert target.read_text() == "new\n" and digest == atomic.sha256_file(target)


def test_seeds_convert_with_a_surrogate_writes_no_half_file(tmp_path):
    seeds = _write_seeds(tmp_path / "s.json", "[" + json.dumps(_extes(user="x \udfff y")) + "]")
    out = tmp_path / "o.jsonl"
    r = run_cli(["seeds", "convert", seeds, "--out", out, "--json"])
    assert r.code == 0 and json.loads(r.stdout)["dialogues_kept"] == 0
    assert out.read_text() == ""  # written whole (empty), never a torn file


def test_demo_seeds_are_clean():
    r = run_cli(["seeds", "inspect", DEMO_SEEDS, "--json"])
    assert r.code == 0 and json.loads(r.stdout)["dropped"] == {}
