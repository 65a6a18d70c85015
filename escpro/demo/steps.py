"""Running the demo's steps: numbered headers, wall time per step, what each step left.

Each step calls its stage's library entry point (never a click command, never JSON parsed from
stdout) and records the command line that does the same by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from escpro.errors import EscproError

T = TypeVar("T")


class DemoStepError(EscproError):
    """A step of the demo failed (the message names the step)."""


@dataclass
class StepRecord:
    name: str
    title: str
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    command: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "seconds": round(self.seconds, 2),
                "outputs": self.outputs, "info": self.info, "command": self.command}


class Steps:
    """Prints `[i/n] title`, runs the step, prints its time; records everything for summary.json.

    `run` returns what the step returns, so that steps hand their results on as typed values."""

    def __init__(self, names: list[str], echo: Callable[[str], None]) -> None:
        self.names = names
        self.echo = echo
        self.records: list[StepRecord] = []

    def run(self, name: str, title: str, fn: Callable[[StepRecord], T]) -> T:
        i = self.names.index(name) + 1
        rec = StepRecord(name, title)
        self.echo(click.style(f"[{i}/{len(self.names)}] {title}", bold=True))
        t0 = time.perf_counter()
        try:
            result = fn(rec)
        except DemoStepError:
            raise
        except EscproError as exc:
            raise DemoStepError(f"step {name}: {exc}") from None
        finally:
            rec.seconds = time.perf_counter() - t0
        self.records.append(rec)
        for label, path in rec.outputs.items():
            self.echo(f"      {label:<18} {path}")
        self.echo(click.style(f"      done in {rec.seconds:.1f} s", fg="green"))
        return result


def shell_join(args: list[str | Path]) -> str:
    import shlex

    return " ".join(shlex.quote(str(a)) for a in args)
