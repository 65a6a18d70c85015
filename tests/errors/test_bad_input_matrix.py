"""Every command, every kind of bad path and bad file: exit code 1 or 2, exactly one line on
stderr ("error: ..."), never a traceback, nothing half-written (issue 13, "Every bad input is one
line"). Runs in-process through the same click entry point as the console script."""

from __future__ import annotations

import pytest

from tests.errors.conftest import TINY, assert_one_line_error, leftovers, run_cli

SEED_KINDS = ["missing", "directory", "empty", "binary", "truncated_json", "deep_json",
              "wrong_shape", "sqlite"]
DB_KINDS = ["missing", "directory", "empty", "binary", "text_as_db", "sqlite", "truncated_db",
            "deep_json"]
CONFIG_KINDS = ["missing", "directory", "binary", "truncated_json", "deep_json", "wrong_shape",
                "surrogate", "sqlite"]
JSONL_KINDS = ["missing", "directory", "empty", "binary", "truncated_json", "deep_json",
               "wrong_shape", "surrogate", "sqlite"]

# (case name, argv with {bad} / {out} / {good:<key>} placeholders, bad file suffix, kinds)
INPUTS = [
    ("seeds-inspect", ["seeds", "inspect", "{bad}"], ".json", SEED_KINDS),
    ("seeds-convert", ["seeds", "convert", "{bad}", "--out", "{out}/s.jsonl"], ".json", SEED_KINDS),
    ("build-seeds", ["build", "--seeds", "{bad}", "--db", "{out}/t.duckdb", "--config", TINY,
                     "--backend", "sim", "--no-progress"], ".json", SEED_KINDS),
    ("eval-testset", ["eval", "testset", "--seeds", "{bad}", "--out", "{out}/ts.jsonl"], ".json", SEED_KINDS),
    ("build-config", ["build", "--seeds", "{good:seeds}", "--db", "{out}/t.duckdb", "--config", "{bad}",
                      "--backend", "sim", "--no-progress"], ".yaml", CONFIG_KINDS),
    ("build-endpoints", ["build", "--seeds", "{good:seeds}", "--db", "{out}/t.duckdb", "--config", TINY,
                         "--endpoints", "{bad}", "--no-progress"], ".json", JSONL_KINDS),
    ("build-resume", ["build", "--seeds", "{good:seeds}", "--db", "{bad}", "--config", TINY,
                      "--backend", "sim", "--resume", "--no-progress"], ".duckdb",
     [k for k in DB_KINDS if k != "missing"]),
    ("query", ["query", "--db", "{bad}", "SELECT count(*) FROM nodes"], ".duckdb", DB_KINDS),
    ("extract", ["extract", "--db", "{bad}", "--out", "{out}/ds"], ".duckdb", DB_KINDS),
    ("stats", ["stats", "--db", "{bad}", "--out", "{out}/st"], ".duckdb", DB_KINDS),
    ("tree", ["tree", "--db", "{bad}"], ".duckdb", DB_KINDS),
    ("merge", ["merge", "{out}/m.duckdb", "{bad}", "{good:db}"], ".duckdb", DB_KINDS),
    ("train-check", ["train", "--config", "{bad}", "--check"], ".yaml", CONFIG_KINDS),
    ("extract-config", ["extract", "--db", "{good:db}", "--out", "{out}/ds", "--config", "{bad}"],
     ".yaml", CONFIG_KINDS),
    ("eval-run-testset", ["eval", "run", "--model", "sim", "--backend", "sim", "--testset", "{bad}",
                          "--out", "{out}/run"], ".jsonl", JSONL_KINDS),
    ("score", ["score", "{bad}"], ".jsonl", JSONL_KINDS),
    ("eval-report", ["eval", "report", "{bad}", "--out", "{out}/rep"], "", ["missing", "empty", "binary"]),
    ("serve-config", ["serve", "--config", "{bad}", "--dry-run"], ".yaml", CONFIG_KINDS),
]

INPUT_CASES = [pytest.param(argv, suffix, kind, id=f"{name}-{kind}")
               for name, argv, suffix, kinds in INPUTS for kind in kinds]


def _argv(argv, good, bad="", out=""):
    res = []
    for a in argv:
        a = str(a)
        if a.startswith("{good:"):
            a = str(good[a[6:-1]])
        res.append(a.replace("{bad}", str(bad)).replace("{out}", str(out)))
    return res


@pytest.mark.parametrize("argv, suffix, kind", INPUT_CASES)
def test_bad_input_file_is_one_line(argv, suffix, kind, bad_file, good, tmp_path):
    bad = bad_file(kind, suffix)
    before = bad.read_bytes() if bad.is_file() else None
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli(_argv(argv, good, bad, out))
    assert_one_line_error(r, f"{' '.join(argv[:2])} with a {kind} file")
    written = sorted(p.name for p in out.iterdir() if not p.name.endswith(".lock"))
    assert written == [], "an output was written for a failed command"
    if before is not None:
        assert bad.read_bytes() == before, "the bad input file was modified"
    assert not leftovers(tmp_path)


# (case name, argv with {out} = the output path, the output is a "file" or a "dir")
OUTPUTS = [
    ("seeds-convert", ["seeds", "convert", "{good:seeds}", "--out", "{out}"], "file"),
    ("build", ["build", "--seeds", "{good:seeds}", "--db", "{out}", "--config", TINY, "--backend", "sim",
               "--limit", "1", "--no-progress"], "file"),
    ("merge", ["merge", "{out}", "{good:db}"], "file"),
    ("extract", ["extract", "--db", "{good:db}", "--out", "{out}"], "dir"),
    ("stats", ["stats", "--db", "{good:db}", "--out", "{out}"], "dir"),
    ("tree", ["tree", "--db", "{good:db}", "--tree", "{tree_id}", "--format", "text", "--out", "{out}"], "file"),
    ("eval-testset", ["eval", "testset", "--seeds", "{good:seeds}", "--out", "{out}"], "file"),
    ("eval-run", ["eval", "run", "--model", "sim", "--backend", "sim", "--testset", "{good:testset}",
                  "--limit", "2", "--out", "{out}"], "dir"),
    ("eval-report", ["eval", "report", "{good:run}", "--out", "{out}"], "dir"),
    ("demo", ["demo", "--backend", "sim", "--seeds", "1", "--no-progress", "--out", "{out}"], "dir"),
]
OUTPUT_KINDS = ["readonly", "wrong_type", "under_a_file"]
OUTPUT_CASES = [pytest.param(argv, what, kind, id=f"{name}-{kind}")
                for name, argv, what in OUTPUTS for kind in OUTPUT_KINDS
                if not (name == "demo" and kind != "readonly")]


@pytest.fixture(scope="module")
def tree_id(good):
    import duckdb

    con = duckdb.connect(str(good["db"]), read_only=True)
    try:
        return con.execute("SELECT min(tree_id) FROM trees").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("argv, what, kind", OUTPUT_CASES)
def test_bad_output_path_is_one_line(argv, what, kind, good, tmp_path, readonly_dir, tree_id):
    if kind == "readonly":
        out = readonly_dir / "x"
    elif kind == "wrong_type":  # a directory where a file goes, or a file where a directory goes
        out = tmp_path / "taken"
        out.mkdir() if what == "file" else out.write_text("keep me\n")
    else:
        (tmp_path / "plain").write_text("keep me\n")
        out = tmp_path / "plain" / "x"
    argv = [a.replace("{tree_id}", tree_id) if isinstance(a, str) else a for a in argv]
    r = run_cli(_argv(argv, good, out=out))
    assert_one_line_error(r, f"{argv[0]} writing to a {kind} path")
    if kind == "readonly":
        assert not out.exists()
    elif kind == "wrong_type" and what == "file":
        assert out.is_dir() and not any(out.iterdir())
    else:
        target = out if kind == "wrong_type" else tmp_path / "plain"
        assert target.read_text() == "keep me\n"
    assert not leftovers(tmp_path)
