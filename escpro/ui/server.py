"""Serving the app: the binding rules, then uvicorn (one process, one worker: the judgement file
has one writer and the tree cache lives in memory)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from escpro.errors import ConfigError
from escpro.ui.app import create_app
from escpro.ui.options import UiOptions, check_options
from escpro.ui.state import build_state


@dataclass(frozen=True)
class Serving:
    url: str
    judgements: str | None
    study: dict | None


def prepare(opts: UiOptions):
    """Validate and open everything; returns (app, what is served). Errors are one line."""
    check_options(opts)
    state = build_state(opts)
    app = create_app(opts, state)
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    url = f"http://{host}:{opts.port}/"
    return app, Serving(url, str(state.store.path) if state.store else None,
                        state.study.describe() if state.study else None)


def check_port(host: str, port: int) -> None:
    """A one-line error now rather than uvicorn's log lines after start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): pass another --port") from None


def serve(app, opts: UiOptions) -> None:
    import uvicorn

    check_port(opts.host, opts.port)
    uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning", server_header=False,
                access_log=False, workers=1)


@contextmanager
def running(app) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port in a background thread (tests,
    screenshots); yields its URL."""
    import uvicorn

    host, timeout_s = "127.0.0.1", 10.0
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="escpro-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the UI server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
