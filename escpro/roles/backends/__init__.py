"""Backends: one module per engine, imported lazily so `sim` and `openai` never pull in torch.

`make_model(binding)` returns the RoleModel for a role binding (escpro.roles.config.RoleBinding).
"""

from __future__ import annotations

from escpro.errors import ConfigError
from escpro.roles.base import RoleModel
from escpro.roles.config import RoleBinding

BACKENDS = ("openai", "transformers", "llamacpp", "vllm-offline", "sim")


def make_model(binding: RoleBinding, *, timeout_s: float = 120.0, end_marker: str = "[END]") -> RoleModel:
    """The engine for one binding. In-process backends load their model here (slow); heavy
    packages are imported only for the backend asked for."""
    b = binding
    if b.backend is None:
        raise ConfigError(
            "a role has no backend: set roles.<role>.backend, pass --endpoints FILE, or --backend "
            "NAME (the simulator only by name: sim)"
        )
    if b.backend == "sim":
        from escpro.roles.backends.sim import SimModel

        return SimModel(b.model, b.sim, end_marker=end_marker)
    if b.backend == "openai" and b.replica_urls:
        from escpro.roles.backends.replicas import ReplicaSet

        return ReplicaSet.from_binding(b, timeout_s=timeout_s)
    if b.backend == "openai":
        from escpro.roles.backends.openai import OpenAIModel

        return OpenAIModel.from_binding(b, timeout_s=timeout_s)
    if b.backend == "transformers":
        from escpro.roles.backends.transformers import TransformersModel

        return TransformersModel.from_binding(b, timeout_s=timeout_s)
    if b.backend == "llamacpp":
        from escpro.roles.backends.llamacpp import LlamaCppModel

        return LlamaCppModel.from_binding(b, timeout_s=timeout_s)
    if b.backend == "vllm-offline":
        from escpro.roles.backends.vllm_offline import VLLMOfflineModel

        return VLLMOfflineModel.from_binding(b, timeout_s=timeout_s)
    raise ConfigError(f"unknown backend '{b.backend}' (use one of {', '.join(BACKENDS)})")
