"""The CLI's shape and messages, run as a user runs it (a subprocess of the installed script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from escpro.cli import COMMANDS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "escpro", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    for name in ["serve", "seeds", "build", "merge", "query", "extract", "stats", "tree",
                 "train", "eval", "score", "demo"]:
        assert f"  {name} " in out.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_accepts_common_options_or_names_missing_piece(name: str) -> None:
    """Each subcommand's --help mentions the common options (--json, --log-level); an unbuilt one exits non-zero with a
    message naming the missing piece, never a traceback."""
    out = run(name, "--help")
    assert "Traceback" not in out.stderr
    if out.returncode == 0 and "[not built yet]" not in out.stdout:
        text = out.stdout
        if "Commands:" in text:  # a group: check its subcommands
            subs = [line.split()[0] for line in text.split("Commands:")[1].splitlines() if line.strip()]
            assert subs
            for sub in subs:
                sub_out = run(name, sub, "--help")
                assert sub_out.returncode == 0, sub_out.stderr
                for opt in ("--json", "--log-level"):  # --config only where read: below
                    assert opt in sub_out.stdout
        else:
            for opt in ("--json", "--log-level"):
                assert opt in text
    else:
        res = run(name, "--config", "x.yaml")
        assert res.returncode != 0
        assert "not built yet" in res.stderr and "Traceback" not in res.stderr


def test_seeds_inspect_json(shared_data: Path) -> None:
    out = run("seeds", "inspect", str(shared_data / "esconv_valid_sample.jsonl"),
              "--taxonomy", "esconv8", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("dialogues_read", "dialogues_kept", "dropped", "strategy_counts", "mean_turns",
                "mean_words_per_utterance", "merged_mixed_strategy"):
        assert key in data
    assert data["dialogues_kept"] == 12


def test_seeds_inspect_corrupted_file_one_line_error(tmp_path: Path, shared_data: Path) -> None:
    broken = tmp_path / "cut.jsonl"
    lines = (shared_data / "esconv_valid_sample.jsonl").read_text().splitlines()
    broken.write_text("\n".join(lines[:3]) + "\n" + lines[3][:200] + "\n")
    out = run("seeds", "inspect", str(broken))
    assert out.returncode != 0
    err = out.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert str(broken) in err and "record 3" in err


def test_seeds_convert_writes_canonical_jsonl(tmp_path: Path) -> None:
    dest = tmp_path / "seeds.jsonl"
    out = run("seeds", "convert", str(FIXTURES / "extes_irregular.json"), "--out", str(dest))
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in dest.read_text().splitlines()]
    assert len(records) == 2 and all("turns" in r for r in records)
    again = run("seeds", "inspect", str(dest), "--json")
    assert json.loads(again.stdout)["dialogues_kept"] == 2


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("build:\n  nope: 1\n")
    out = run("build", "--seeds", str(FIXTURES / "extes_irregular.json"), "--db",
              str(tmp_path / "t.duckdb"), "--config", str(cfg))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "build.nope" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_commands_that_read_no_config_refuse_config(tmp_path: Path) -> None:
    """--config is accepted only where a config is read; elsewhere it is an unknown option,
    not a file silently ignored."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("build: {}\n")
    out = run("seeds", "inspect", str(FIXTURES / "extes_irregular.json"), "--config", str(cfg))
    assert out.returncode == 2 and "--config" in out.stderr and "Traceback" not in out.stderr
    for cmd in (["merge", "--help"], ["query", "--help"], ["score", "--help"], ["eval", "report", "--help"],
                ["ui", "export", "--help"], ["seeds", "convert", "--help"]):
        assert "--config" not in run(*cmd).stdout, cmd
    for cmd in (["build", "--help"], ["extract", "--help"], ["stats", "--help"], ["tree", "--help"],
                ["train", "--help"], ["eval", "run", "--help"], ["ui", "--help"], ["demo", "--help"]):
        assert "--config" in run(*cmd).stdout, cmd
