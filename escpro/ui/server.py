"""Serving the app: the binding rules, then uvicorn (one process, one worker: the judgement file
has one writer and the tree cache lives in memory)."""

from __future__ import annotations

from dataclasses import dataclass

from escpro.ui.app import build_state, create_app
from escpro.ui.options import UiOptions, check_options


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


def serve(app, opts: UiOptions) -> None:
    import uvicorn

    uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning", server_header=False,
                access_log=False, workers=1)
