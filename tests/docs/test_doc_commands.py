"""Issue 17 item 7: the commands in README.md and docs/*.md are real.

Every `escpro ...` line of a bash block is parsed by escpro's own command line (so a renamed
option, a wrong choice or a missing required option fails here); one that names an input file
that does not exist must be marked `# your data` (README "Seeds" says where to get it) or read a
file an earlier command of the same page writes. The README's walkthrough on bundled data and
its example queries run for real.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from escpro.cli import cli

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OUTPUT_FLAGS = {"--out", "--db", "--output", "-o", "--endpoints-out"}
MARKER = "your "  # "# your data", "# your seeds", ... : the reader brings the file


def bash_lines(page: Path) -> list[tuple[int, str, str]]:
    """(line number, command, comment) for every `escpro` line of its bash blocks."""
    out, in_bash, cont = [], False, ""
    for n, raw in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith("```"):
            in_bash = raw.strip() in ("```bash", "```sh", "```shell")
            continue
        if not in_bash:
            continue
        line = cont + raw.strip()
        if line.endswith("\\"):
            cont = line[:-1] + " "
            continue
        cont = ""
        cmd, _, comment = line.partition(" # ")
        cmd = re.split(r"\s[|&]\s?|\s&&\s|\s&$", cmd)[0].strip()
        if cmd.startswith("echo ") and "| escpro" in line:
            cmd = "escpro" + line.split("| escpro", 1)[1].partition(" # ")[0]
        if cmd.startswith("escpro ") and "..." not in cmd and "[" not in cmd and "<" not in cmd and "$" not in cmd:
            out.append((n, cmd, comment))
    return out


def _command(args: list[str]) -> tuple[click.Command, list[str], str]:
    name, rest = args[0], args[1:]
    cmd = cli.get_command(click.Context(cli), name)
    if isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        name, cmd, rest = rest[0], cmd.get_command(click.Context(cmd), rest[0]), rest[1:]
    assert cmd is not None, f"no command {name}"
    return cmd, rest, name


CASES = [(page, n, cmd, comment) for page in PAGES for n, cmd, comment in bash_lines(page)]


@pytest.mark.parametrize(("page", "n", "cmd", "comment"), CASES,
                         ids=[f"{p.name}:{n}" for p, n, _, _ in CASES])
def test_command_parses_and_says_when_it_needs_your_data(page, n, cmd, comment):
    args = shlex.split(cmd)[1:]
    command, rest, name = _command(args)
    produced = _produced_before(page, n)

    def check(path: str) -> None:
        p = path.rstrip("/")
        made = any(p == m or p.startswith(m + "/") or ("*" in p and m.startswith(p.split("*")[0]))
                   for m in produced)
        ok = (REPO / path).exists() or made or MARKER in comment
        assert ok, f"{page.name}:{n}: {path} does not exist; mark the command '# your data' or make it first"

    try:
        ctx = command.make_context(name, rest)
    except click.BadParameter as exc:
        missing = re.search(r"'([^']+)' does not exist", exc.format_message())
        if not missing:
            raise
        check(missing.group(1))
        return
    except click.exceptions.Exit:
        return
    for param in command.params:  # every input path the command reads
        if not isinstance(param.type, click.Path) or set(param.opts) & OUTPUT_FLAGS or param.name == "out":
            continue
        vals = ctx.params.get(param.name)
        for v in vals if isinstance(vals, tuple | list) else [vals]:
            if v is not None and str(v) != "-":
                check(str(v))


def _produced_before(page: Path, line: int) -> set[str]:
    made = set()
    for n, cmd, _ in bash_lines(page):
        if n >= line:
            break
        toks = shlex.split(cmd)
        made.update(toks[i + 1].rstrip("/") for i, t in enumerate(toks[:-1]) if t in OUTPUT_FLAGS)
        made.update(t for t in toks[1:] if t.endswith(".duckdb") and toks[1] == "merge")
    return made


def _readme_block(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    part = text.split(title, 1)[1]
    return part.split("```sql", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_readme_walkthrough_and_queries_run(tmp_path):
    """The README's bundled-data chain, verbatim, in a copy of the repository's layout."""
    for name in ("configs", "escpro"):
        (tmp_path / name).symlink_to(REPO / name)
    chain = [c for _, c, _ in bash_lines(REPO / "README.md")
             if c.startswith(("escpro build --seeds escpro/data", "escpro extract --db t.duckdb",
                              "escpro query --db t.duckdb", "escpro seeds inspect escpro/data"))]
    chain.append("escpro train --config configs/train/tiny-cpu.yaml --method dpo --data esc-pro/ --out runs/dpo --max-steps 1")
    assert len(chain) >= 5, chain
    for cmd in chain:
        proc = subprocess.run([sys.executable, "-m", *shlex.split(cmd)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600, input="SELECT config FROM runs")
        assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"
    for sql in [s.strip() for s in _readme_block("### Example queries").split(";") if s.strip()]:
        sql = "\n".join(ln for ln in sql.splitlines() if not ln.strip().startswith("--"))
        proc = subprocess.run([sys.executable, "-m", "escpro", "query", "--db", "t.duckdb", sql], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{sql}\n{proc.stderr}"
