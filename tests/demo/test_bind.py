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
