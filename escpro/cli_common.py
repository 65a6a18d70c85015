"""What every subcommand shares: --config/--json/--log-level, one-line errors, JSON output.

Use `@escpro_command()` (or `@escpro_command(group)`) instead of `@click.command()`; the wrapped
function receives `as_json` and `log_level` besides its own options, and `config_path` only when
the command reads a config file (`config=True`): a command never accepts an option it ignores.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import click

from escpro.console import escape_controls
from escpro.errors import EscproError, first_line, user_error

LOG_LEVELS = ["debug", "info", "warning", "error"]


def common_options(func: Callable, config: bool = True) -> Callable:
    func = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        default="warning",
        show_default=True,
        help="Logging verbosity.",
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)
    if not config:
        return func
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="YAML config (sections: roles, build, extract, train, eval). Flags override it.",
    )(func)
    return func


def _subject(exc: BaseException) -> str | None:
    """The file an exception is about when it does not say: the innermost frame's Path local
    (loaders keep the file they read in a Path; a decode or recursion error happens below it)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        paths = [v for k, v in local.items() if isinstance(v, PurePath) and not k.startswith("_")]
        named = [local[k] for k in ("path", "p", "file", "src") if isinstance(local.get(k), PurePath)]
        if named or paths:
            found = (named or paths)[0]
        tb = tb.tb_next
    return str(found) if found is not None else None


def report(exc: BaseException, *, debug: bool = False) -> int:
    """Print one line on stderr for any exception a command raised; returns the exit code.

    The one place where OS, decode, recursion, DuckDB and validation errors become user errors
    (escpro.errors.user_error); anything else is a bug, also one line (with --log-level debug
    the traceback comes first)."""
    err = user_error(exc, None if isinstance(exc, EscproError) else _subject(exc))
    if debug and not isinstance(exc, EscproError):
        traceback.print_exception(exc, file=sys.stderr)
    if err is None:
        hint = "" if debug else "; run with --log-level debug for the traceback"
        click.echo(f"error: internal error: {type(exc).__name__}: {first_line(exc)}{hint}", err=True)
        return 1
    click.echo(f"error: {first_line(escape_controls(str(err), keep=''), limit=2000)}", err=True)
    return err.exit_code


def handle_errors(func: Callable) -> Callable:
    """Run a command body: set logging, turn every exception into one line on stderr and an
    exit code (report())."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        level = str(kwargs.get("log_level", "warning")).lower()
        logging.basicConfig(
            level=getattr(logging, level.upper()),
            format="%(levelname)s %(name)s: %(message)s",
            force=True,  # log to this invocation's stderr (in-process runs: tests, the demo)
        )
        from escpro.console import configure

        configure(str(kwargs.get("log_level", "warning")))
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # click's own (usage errors): cli.EscproGroup prints them as one line
        except Exception as exc:
            sys.exit(report(exc, debug=level == "debug"))

    return wrapper


def escpro_command(group: click.Group | None = None, *, config: bool = False,
                   **settings: Any) -> Callable:
    """Decorator: a click command with the common options and error handling; `config=True` for
    a command that reads --config."""

    def deco(func: Callable) -> click.Command:
        wrapped = handle_errors(common_options(func, config=config))
        maker = group.command if group is not None else click.command
        return maker(**settings)(wrapped)

    return deco


def emit(obj: Any, as_json: bool, text: str | Callable[[], str] | None = None) -> None:
    """Print obj as one JSON object (--json) or the human text."""
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, default=str))
    else:
        click.echo(text() if callable(text) else (text if text is not None else str(obj)))
