"""The event loop escpro's many concurrent role calls run on: uvloop where it is installed (a
core dependency except on Windows), asyncio's own loop otherwise.

A build spends much of its own CPU in the event loop (socket reads and writes, timers, task
switches for every call of every tree); uvloop does that work in C. `ESCPRO_EVENT_LOOP=asyncio`
forces the standard loop, e.g. to compare the two or to use asyncio's debug mode.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    """"uvloop" or "asyncio": the loop run() uses in this environment."""
    if os.environ.get("ESCPRO_EVENT_LOOP", "auto").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run() on the loop loop_name() names."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)
