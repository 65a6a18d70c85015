"""The event loop the build runs on: uvloop (a core dependency on Linux) unless the user asks for
asyncio's own loop."""

from __future__ import annotations

import asyncio

import pytest

from escpro import aio


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_build_loop_is_uvloop_where_installed(monkeypatch):
    pytest.importorskip("uvloop")
    monkeypatch.delenv("ESCPRO_EVENT_LOOP", raising=False)
    assert aio.loop_name() == "uvloop"
    assert aio.run(_loop_module()).startswith("uvloop")


def test_asyncio_loop_on_request(monkeypatch):
    monkeypatch.setenv("ESCPRO_EVENT_LOOP", "asyncio")
    assert aio.loop_name() == "asyncio"
    assert aio.run(_loop_module()).startswith("asyncio")
