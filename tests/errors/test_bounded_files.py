"""Every small structured file a user hands escpro goes through ONE bounded reader
(escpro.yamlfile.load_bounded): too large, too many values, nested past the parser's stack or the
wrong shape is one line naming the file, exit 2, through the real console entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from escpro.yamlfile import MAX_CONFIG_BYTES, MAX_CONFIG_NODES, load_bounded, read_mapping
from tests.errors.conftest import DEMO_SEEDS, ROOT, TINY

ENTRY = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}


def _escpro(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "escpro", *map(str, args)], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


def _build_with_endpoints(tmp_path: Path, eps: Path) -> str:
    """`escpro build --endpoints eps`: the one stderr line (asserting exit 2, nothing built)."""
    r = _escpro("build", "--seeds", DEMO_SEEDS, "--db", tmp_path / "t.duckdb", "--config", TINY,
                "--endpoints", eps, "--no-progress")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"error: {eps}: "), lines[0]
    assert not (tmp_path / "t.duckdb").exists()
    return lines[0]


def test_oversized_endpoints_file(tmp_path):
    eps = tmp_path / "eps.json"
    eps.write_text(json.dumps({"reward": {**ENTRY, "model": "m" * MAX_CONFIG_BYTES}}))
    line = _build_with_endpoints(tmp_path, eps)
    assert f"an endpoints file is at most {MAX_CONFIG_BYTES} bytes" in line


def test_endpoints_file_nested_100000_deep(tmp_path):
    eps = tmp_path / "eps.json"
    eps.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply: not an endpoints file" in _build_with_endpoints(tmp_path, eps)


def test_endpoints_file_with_too_many_values(tmp_path):
    eps = tmp_path / "eps.json"
    eps.write_text(json.dumps({"reward": ENTRY, "padding": [0] * MAX_CONFIG_NODES}))
    assert eps.stat().st_size < MAX_CONFIG_BYTES
    assert f"more than {MAX_CONFIG_NODES} values" in _build_with_endpoints(tmp_path, eps)


@pytest.mark.parametrize("top", ["[1, 2]", "42", '"reward"'])
def test_endpoints_file_top_level_not_an_object(tmp_path, top):
    eps = tmp_path / "eps.json"
    eps.write_text(top + "\n")
    assert "(top level): a mapping is required" in _build_with_endpoints(tmp_path, eps)


def test_yaml_endpoints_file_is_read_by_the_same_reader(tmp_path):
    eps = tmp_path / "eps.yaml"
    eps.write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcde", "bcdef")))
    assert "more than 100000 values (YAML aliases" in _build_with_endpoints(tmp_path, eps)


def test_json_or_yaml_by_suffix_and_content(tmp_path):
    """`.json` is JSON; a file named otherwise that reads as JSON is JSON (`escpro score --json >
    scores.out`), else YAML; `.yaml` is YAML even when it starts with a brace."""
    (tmp_path / "s.out").write_text('{"Q": 0.5, "note": "a\\/b"}')  # "\/" is JSON, not YAML
    assert load_bounded(tmp_path / "s.out") == {"Q": 0.5, "note": "a/b"}
    (tmp_path / "flow.yaml").write_text("{a: 1}\n")
    assert read_mapping(tmp_path / "flow.yaml") == {"a": 1}
    (tmp_path / "flow.cfg").write_text("{a: 1}\n")
    assert read_mapping(tmp_path / "flow.cfg") == {"a": 1}
    (tmp_path / "bad.json").write_text("{a: 1}\n")
    from escpro.errors import ConfigError

    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON \(Expecting property name"):
        load_bounded(tmp_path / "bad.json")


def test_deepspeed_config_and_scores_file_go_through_the_bounded_reader(tmp_path):
    from escpro.errors import ConfigError, DataError
    from escpro.evaluate.report import collect_runs
    from escpro.train.launch import read_deepspeed

    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "ds.json").write_text(deep)
    with pytest.raises(ConfigError, match=r"ds\.json: nested too deeply: not a deepspeed config$"):
        read_deepspeed(str(tmp_path / "ds.json"))
    (tmp_path / "scores.out").write_text(deep)
    with pytest.raises(DataError, match=r"scores\.out: nested too deeply: not a scores file$"):
        collect_runs([tmp_path / "scores.out"])
