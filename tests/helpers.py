"""Helpers several test folders share (imported as `tests.helpers`, like `tests.errors.conftest`):
loading a script as a module, read-only SQL on a DuckDB file, `escpro serve` as a real process,
a real model's chat template."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]

GEMMA2_TEMPLATE = (  # google/gemma-2-9b-it's official template: raises on a system role and on non-alternation
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


def load_script(path: str | Path) -> ModuleType:
    """A script that is not part of the package (scripts/*.py, a test's generator) as a module,
    registered under its file name so that its dataclasses and pickled-by-name helpers resolve."""
    path = Path(path)
    if not path.is_absolute():
        path = REPO / path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, path
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


def db_rows(db: str | Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """The rows of one query on a DuckDB file opened read-only (closed again at once, so a
    writer may open it next)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def start_serve(cfg: Path, eps: Path, *, env: dict[str, str], timeout_s: float, poll_s: float,
                what: str) -> subprocess.Popen:
    """`escpro serve --config cfg --endpoints-out eps` as a real process, returned once it has
    written `eps` (its servers are healthy); killed again when it dies or `timeout_s` passes
    first (the assertion says `what` did not happen)."""
    proc = subprocess.Popen([sys.executable, "-m", "escpro", "serve", "--config", str(cfg),
                             "--endpoints-out", str(eps)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not eps.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, what
            time.sleep(poll_s)
    except BaseException:
        proc.kill()
        proc.wait(30)
        raise
    return proc
