"""Which engine the demo's roles get: on llama.cpp, one shared model instance decoding on every
usable core (llama-cpp-python's own default is half of them), unless the user's config says."""

from __future__ import annotations

import os
from pathlib import Path

from escpro.demo.config import load_demo_config
from escpro.demo.pipeline import _bind_embedded

ROLES = ("seeker", "supporter", "strategy", "reward")


def test_llamacpp_roles_share_one_engine_on_all_cores(tmp_path: Path) -> None:
    _, cfg, _ = load_demo_config("llamacpp", None)
    gguf = tmp_path / "m.gguf"
    bound = _bind_embedded(cfg, "llamacpp", gguf, tmp_path / "hf")
    bindings = [bound.roles.binding(r) for r in ROLES]
    assert {b.backend for b in bindings} == {"llamacpp"} and {b.model for b in bindings} == {str(gguf)}
    assert {b.engine_args["n_threads"] for b in bindings} == {len(os.sched_getaffinity(0))}
    assert len({b.instance_key() for b in bindings}) == 1


def test_users_thread_count_wins(tmp_path: Path) -> None:
    user = tmp_path / "u.yaml"
    user.write_text("roles:\n  seeker: {engine_args: {n_threads: 1}}\n")
    _, cfg, _ = load_demo_config("llamacpp", user)
    bound = _bind_embedded(cfg, "llamacpp", tmp_path / "m.gguf", tmp_path / "hf")
    assert bound.roles.binding("seeker").engine_args == {"n_threads": 1}
    assert bound.roles.binding("reward").engine_args["n_threads"] == len(os.sched_getaffinity(0))


def test_transformers_roles_are_left_alone(tmp_path: Path) -> None:
    _, cfg, _ = load_demo_config("transformers", None)
    bound = _bind_embedded(cfg, "transformers", None, tmp_path / "hf")
    assert all(bound.roles.binding(r).engine_args == {} for r in ROLES)
    assert {bound.roles.binding(r).model for r in ROLES} == {str(tmp_path / "hf")}
