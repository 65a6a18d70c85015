"""Backends that cannot run on this CPU machine refuse at once with a way forward."""

import importlib.util

import pytest

from escpro.errors import BackendUnavailable, ConfigError
from escpro.roles.backends import make_model
from escpro.roles.config import RoleBinding, RolesConfig
from escpro.roles.roleset import build_roleset
from escpro.taxonomy import load_taxonomy


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(_has_cuda(), reason="this machine has a CUDA GPU")
def test_vllm_offline_refuses_on_cpu():
    with pytest.raises(BackendUnavailable, match="NVIDIA GPU") as info:
        make_model(RoleBinding(backend="vllm-offline", model="Qwen/Qwen2.5-7B-Instruct"))
    assert "transformers" in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is not None, reason="llama-cpp-python installed")
def test_llamacpp_missing_names_the_extra():
    with pytest.raises(BackendUnavailable, match=r"escpro\[llamacpp\]"):
        make_model(RoleBinding(backend="llamacpp", model="/x/model.gguf"))


def test_openai_without_base_url_or_key_is_a_config_error(monkeypatch):
    with pytest.raises(ConfigError, match="base_url"):
        make_model(RoleBinding(backend="openai", model="m"))
    monkeypatch.delenv("ESCPRO_TEST_NO_KEY", raising=False)
    with pytest.raises(ConfigError, match="ESCPRO_TEST_NO_KEY"):
        make_model(RoleBinding(backend="openai", model="m", base_url="http://127.0.0.1:1/v1",
                               api_key_env="ESCPRO_TEST_NO_KEY"))


def test_roleset_build_refusal_propagates():
    cfg = RolesConfig(reward=RoleBinding(backend="openai", model="m"))
    with pytest.raises(ConfigError):
        build_roleset(cfg, load_taxonomy("cso8"))
