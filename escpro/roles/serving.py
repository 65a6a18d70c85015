"""Served-model definitions (serving/*.yaml) and the vLLM launcher behind `escpro serve`.

One vLLM OpenAI server per distinct model, each bound to 127.0.0.1 unless told otherwise, prefix
caching on (the four roles resend long shared dialogue prefixes), optional API key (passed to the
child through VLLM_API_KEY, never on its command line), LoRA adapters, extra flags, and the vLLM
executable or Python of vLLM's own environment (vLLM pins its own torch and transformers).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from escpro.config import format_validation_error, read_yaml
from escpro.config_base import Section
from escpro.errors import BackendUnavailable, ConfigError, EscproError
from escpro.roles.base import ROLES

CPU_HINT = (
    "on a CPU, run the roles in-process instead: set roles.<role>.backend to 'transformers' "
    "(or 'llamacpp') in your config, or start the simulator with `escpro serve --engine sim` "
    "(see docs/roles.md)"
)


class VLLMSettings(Section):
    executable: str | None = Field(None, description="the `vllm` CLI of vLLM's environment")
    python: str | None = Field(None, description="or the python of vLLM's environment")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for every server")

    @model_validator(mode="after")
    def _one_launcher(self) -> VLLMSettings:
        if self.executable and self.python:
            raise ValueError("give either vllm.executable or vllm.python, not both")
        return self


class ServedModel(Section):
    name: str = Field(..., min_length=1, description="served model name (what clients send as model)")
    model: str = Field(..., min_length=1, description="HF id or local path")
    roles: list[str] = Field(..., min_length=1)
    port: int = Field(..., ge=1, le=65535)
    host: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    gpus: str | None = Field(None, description="CUDA_VISIBLE_DEVICES for this server, e.g. '0,1'")
    max_model_len: int | None = Field(None, ge=256)
    dtype: str | None = None
    lora_adapters: dict[str, str] = Field(default_factory=dict, description="adapter name -> directory")
    role_adapters: dict[str, str] = Field(
        default_factory=dict, description="role -> adapter name the role should use (else the base)"
    )
    extra_args: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ServedModel:
        bad = [r for r in self.roles if r not in ROLES]
        if bad:
            raise ValueError(f"unknown role '{bad[0]}' (use {', '.join(ROLES)})")
        for role, adapter in self.role_adapters.items():
            if role not in self.roles:
                raise ValueError(f"role_adapters: role '{role}' is not served by this model")
            if adapter not in self.lora_adapters:
                raise ValueError(f"role_adapters: '{adapter}' is not in lora_adapters")
        return self


class ServingConfig(Section):
    host: str = "127.0.0.1"
    api_key_env: str | None = Field(None, description="env var holding the API key clients and servers use")
    health_timeout_s: float = Field(1800.0, gt=0)
    log_dir: str = "serve-logs"
    vllm: VLLMSettings = Field(default_factory=VLLMSettings)
    models: list[ServedModel] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ServingConfig:
        seen: dict[str, str] = {}
        ports: set[int] = set()
        for m in self.models:
            if m.port in ports:
                raise ValueError(f"port {m.port} is used by two models")
            ports.add(m.port)
            for r in m.roles:
                if r in seen:
                    raise ValueError(f"role '{r}' is served by both '{seen[r]}' and '{m.name}'")
                seen[r] = m.name
        return self


def load_serving(path: str | Path) -> ServingConfig:
    data = read_yaml(path)
    try:
        return ServingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None


def launcher(cfg: ServingConfig) -> list[str]:
    if cfg.vllm.python:
        return [cfg.vllm.python, "-m", "vllm.entrypoints.cli.main", "serve"]
    return [cfg.vllm.executable or "vllm", "serve"]


def server_command(cfg: ServingConfig, m: ServedModel) -> list[str]:
    cmd = launcher(cfg) + [
        m.model,
        "--host", m.host or cfg.host,
        "--port", str(m.port),
        "--served-model-name", m.name,
        "--tensor-parallel-size", str(m.tensor_parallel_size),
        "--gpu-memory-utilization", str(m.gpu_memory_utilization),
        "--enable-prefix-caching",
    ]
    if m.max_model_len:
        cmd += ["--max-model-len", str(m.max_model_len)]
    if m.dtype:
        cmd += ["--dtype", m.dtype]
    if m.lora_adapters:
        cmd += ["--enable-lora", "--lora-modules"]
        cmd += [f"{name}={path}" for name, path in m.lora_adapters.items()]
    return cmd + list(m.extra_args)


def server_env(cfg: ServingConfig, m: ServedModel) -> dict[str, str]:
    """Only the variables escpro sets (the child inherits the rest)."""
    env = dict(cfg.vllm.env)
    if m.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = m.gpus
    if cfg.api_key_env:
        env["VLLM_API_KEY"] = f"${cfg.api_key_env}"  # resolved at launch; never printed
    return env


def endpoints_for(cfg: ServingConfig) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in cfg.models:
        host = m.host or cfg.host
        client_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        for role in m.roles:
            out[role] = {
                "base_url": f"http://{client_host}:{m.port}/v1",
                "model": m.role_adapters.get(role, m.name),
                "api_key_env": cfg.api_key_env,
                "structured": "vllm",
            }
    return out


def dry_run_lines(cfg: ServingConfig) -> list[str]:
    lines = []
    for m in cfg.models:
        env = " ".join(f"{k}={shlex.quote(v) if not v.startswith('$') else v}" for k, v in server_env(cfg, m).items())
        lines.append(((env + " ") if env else "") + shlex.join(server_command(cfg, m)))
    return lines


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
    if not gpu_available():
        raise BackendUnavailable(f"no NVIDIA GPU found (nvidia-smi), and vLLM serving needs one; {CPU_HINT}")
    exe = launcher(cfg)[0]
    if shutil.which(exe) is None and not Path(exe).is_file():
        where = "vllm.python" if cfg.vllm.python else "vllm.executable"
        raise BackendUnavailable(
            f"vLLM launcher '{exe}' not found: install vLLM in its own environment "
            f"(`python -m venv vllm-env && vllm-env/bin/pip install vllm`) and point {where} at it; {CPU_HINT}"
        )


@dataclass
class Child:
    model: ServedModel
    proc: subprocess.Popen
    log_path: Path


def _health(url: str, api_key: str | None) -> bool:
    req = urllib.request.Request(url)
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path, n: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


class Launcher:
    """Starts the servers, waits for health, stops them all (SIGTERM, then SIGKILL)."""

    def __init__(self, cfg: ServingConfig, *, echo=print) -> None:
        self.cfg = cfg
        self.children: list[Child] = []
        self.echo = echo

    def start(self) -> None:
        api_key = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        if self.cfg.api_key_env and not api_key:
            raise ConfigError(f"api_key_env: environment variable {self.cfg.api_key_env} is not set")
        log_dir = Path(self.cfg.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        for m in self.cfg.models:
            env = {**os.environ, **server_env(self.cfg, m)}
            if api_key:
                env["VLLM_API_KEY"] = api_key
            log_path = log_dir / f"{m.name}.log"
            log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
            proc = subprocess.Popen(
                server_command(self.cfg, m), stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )
            log.close()
            self.children.append(Child(m, proc, log_path))
            self.echo(f"started {m.name} (pid {proc.pid}) on port {m.port}; log {log_path}")

    def wait_healthy(self) -> None:
        api_key = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        deadline = time.monotonic() + self.cfg.health_timeout_s
        pending = list(self.children)
        while pending:
            for c in list(pending):
                code = c.proc.poll()
                if code is not None:
                    raise EscproError(
                        f"vLLM server '{c.model.name}' exited with code {code} before it was healthy: "
                        f"{_tail(c.log_path)} (full log: {c.log_path})"
                    )
                host = c.model.host or self.cfg.host
                host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
                if _health(f"http://{host}:{c.model.port}/health", api_key):
                    self.echo(f"{c.model.name} is healthy")
                    pending.remove(c)
            if pending:
                if time.monotonic() > deadline:
                    names = ", ".join(c.model.name for c in pending)
                    raise EscproError(f"not healthy after {self.cfg.health_timeout_s:g} s: {names}")
                time.sleep(2.0)

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
        self.children.clear()

    def any_exited(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)
