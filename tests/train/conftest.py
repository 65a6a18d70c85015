"""Shared fixtures for the training tests: ONE tiny random model and one small extract dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from fixtures import make_extract_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPO / "configs" / "train" / "tiny-cpu.yaml"


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from escpro.tiny_model import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="session")
def extract_dir(tmp_path_factory) -> Path:
    return make_extract_dir(tmp_path_factory.mktemp("extract"))


@pytest.fixture()
def make_cfg(tiny_model, extract_dir, tmp_path):
    """TrainConfig from tiny-cpu.yaml with overrides (out defaults to a fresh tmp dir)."""
    from escpro.config import load_config

    def _make(**over):
        over.setdefault("model", str(tiny_model))
        over.setdefault("data", str(extract_dir))
        over.setdefault("out", str(tmp_path / f"out-{over.get('method', 'dpo')}-{over.get('mode', 'lora')}"))
        over.setdefault("max_steps", 3)
        over.setdefault("ref_cache_dir", str(tmp_path / "refcache"))
        return load_config(TINY_RECIPE, {"train": over}).train

    return _make
