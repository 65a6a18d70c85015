"""Suite-wide fixtures: the shared real-format data folder, deterministic single-thread torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ESCPRO_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; skips where absent (a user's clone) unless ESCPRO_REQUIRE_SHARED=1."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("ESCPRO_REQUIRE_SHARED") == "1":
            pytest.fail(f"ESCPRO_REQUIRE_SHARED=1 but {SHARED_DATA} is missing")
        pytest.skip(f"{SHARED_DATA} not present (shared sample data is not part of the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO
