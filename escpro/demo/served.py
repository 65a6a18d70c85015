"""`escpro demo --backend vllm`: the demo's roles through `escpro serve` on vLLM's CPU build.

The demo starts the server of serving/cpu.yaml (the same Gemma 3 270M, converted once) on a free
port with its log under OUT/serve-logs, points the roles at it through OUT/endpoints.json (what
`escpro build --endpoints` reads, so the printed command can be pasted while a server runs), and
stops it as soon as the build is done, so training gets the cores. SIGTERM stops it too.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from escpro.config import AppConfig
from escpro.paths import REPO_DIR

SERVING_FILE = REPO_DIR / "serving" / "cpu.yaml"
SERVED_NAME = "gemma3-270m"
# With whitespace-free grammars vLLM writes the 8-strategy object in ~110 tokens (its key names
# token by token): the in-process backends' 72 would cut it short.
MIN_STRATEGY_TOKENS = 160


def vllm_available() -> bool:
    from escpro.roles.serving import load_serving
    from escpro.roles.serving_run import check_can_serve

    try:
        check_can_serve(load_serving(SERVING_FILE))
    except Exception:  # noqa: BLE001 - any reason means: not available here
        return False
    return True


def bind_served(cfg: AppConfig, embedded: str) -> AppConfig:
    """Roles naming the embedded model go to the served one (base URL from the endpoints file)."""
    updates: dict[str, Any] = {}
    for role in ("seeker", "supporter", "strategy", "reward"):
        b = cfg.roles.binding(role)
        if b.model != embedded:
            continue
        upd: dict[str, Any] = {"backend": "openai", "model": SERVED_NAME, "api": "completions",
                               "concurrency": 32}
        if role == "strategy":
            upd["max_tokens"] = max(b.max_tokens, MIN_STRATEGY_TOKENS)
        updates[role] = b.model_copy(update=upd)
    return cfg.model_copy(update={"roles": cfg.roles.model_copy(update=updates)})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_roles(out: Path, echo: Callable[[str], None], overrides: dict[str, Any] | None = None,
                 model_overrides: dict[str, Any] | None = None) -> Iterator[Path]:
    """Start the server (serving/cpu.yaml, top-level keys replaced by `overrides`, each served
    model's keys by `model_overrides`), yield the endpoints file once healthy, always stop it."""
    from escpro.roles.endpoints import write_endpoints
    from escpro.roles.serving import load_serving
    from escpro.roles.serving_run import Launcher, check_can_serve, ready_endpoints, resolve_models

    cfg = load_serving(SERVING_FILE)
    models = [m.model_copy(update={**(model_overrides or {}), "port": _free_port()}) for m in cfg.models]
    cfg = cfg.model_copy(update={"models": models, "log_dir": str(out / "serve-logs"), **(overrides or {})})
    check_can_serve(cfg)
    launcher = Launcher(cfg, echo=lambda m: echo(f"      {m}"), model_paths=resolve_models(cfg, echo=echo))

    def on_term(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        launcher.start()
        launcher.wait_healthy()
        path = out / "endpoints.json"
        write_endpoints(path, ready_endpoints(launcher))
        yield path
    finally:
        launcher.stop()
        signal.signal(signal.SIGTERM, previous)
        echo("      vLLM server stopped")
