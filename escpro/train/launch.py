"""Process-group environment and device choice.

`accelerate launch` / `deepspeed` / `torchrun` set RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT. A plain `escpro train` with a DeepSpeed config (one process, e.g. ZeRO-2 on a CPU over
gloo) has none of them, and DeepSpeed then looks for MPI: we set single-process values instead.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from escpro.errors import BackendUnavailable, ConfigError
from escpro.yamlfile import load_bounded


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_dist_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Fill in single-process values for whatever the launcher did not set; returns what was set."""
    env = os.environ if env is None else env
    defaults = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    added = {}
    for k, v in defaults.items():
        if k not in env:
            env[k] = added[k] = v
    if "MASTER_PORT" not in env:
        env["MASTER_PORT"] = added["MASTER_PORT"] = str(free_port())
    return added


def world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def read_deepspeed(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        from escpro.paths import configs_dir

        alt = configs_dir() / "deepspeed" / p.name
        if not alt.is_file():
            raise ConfigError(f"deepspeed config {path}: file not found")
        p = alt
    data = load_bounded(p, "deepspeed config")
    if not isinstance(data, dict) or "zero_optimization" not in data:
        raise ConfigError(f"deepspeed config {p}: no zero_optimization section")
    return data


def choose_device(device: str) -> bool:
    """True when training runs on the CPU."""
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise BackendUnavailable("device cuda requested but no CUDA GPU is visible (set device: cpu)")
    return device == "cpu" or not has_cuda


@dataclass(frozen=True)
class Launch:
    """Where and how this process trains, all decided before any weights load."""

    out: Path
    resume: str | None  # the checkpoint to resume from
    world_size: int
    use_cpu: bool
    deepspeed: dict[str, Any] | None
    dist_env: dict[str, str]  # the process-group variables escpro set itself

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"
