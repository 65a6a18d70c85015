"""What every subcommand shares: --config/--json/--log-level, one-line errors, JSON output.

Use `@escpro_command()` (or `@escpro_command(group)`) instead of `@click.command()`; the wrapped
function receives `config_path`, `as_json` and `log_level` besides its own options.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from escpro.errors import EscproError

LOG_LEVELS = ["debug", "info", "warning", "error"]


def common_options(func: Callable) -> Callable:
    func = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        default="warning",
        show_default=True,
        help="Logging verbosity.",
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="YAML config (sections: roles, build, extract, train, eval). Flags override it.",
    )(func)
    return func


def handle_errors(func: Callable) -> Callable:
    """Run a command body: set logging, turn EscproError into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(
            level=getattr(logging, str(kwargs.get("log_level", "warning")).upper()),
            format="%(levelname)s %(name)s: %(message)s",
        )
        from escpro.console import configure

        configure(str(kwargs.get("log_level", "warning")))
        try:
            return func(*args, **kwargs)
        except EscproError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def escpro_command(group: click.Group | None = None, **settings: Any) -> Callable:
    """Decorator: a click command with the common options and error handling."""

    def deco(func: Callable) -> click.Command:
        wrapped = handle_errors(common_options(func))
        maker = group.command if group is not None else click.command
        return maker(**settings)(wrapped)

    return deco


def emit(obj: Any, as_json: bool, text: str | Callable[[], str] | None = None) -> None:
    """Print obj as one JSON object (--json) or the human text."""
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, default=str))
    else:
        click.echo(text() if callable(text) else (text if text is not None else str(obj)))
