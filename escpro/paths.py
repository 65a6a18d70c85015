"""Where escpro finds its shipped configs, whether run from a checkout or an installed package."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def configs_dir() -> Path:
    """The `configs/` folder: $ESCPRO_CONFIGS, else the checkout's."""
    env = os.environ.get("ESCPRO_CONFIGS")
    if env:
        return Path(env)
    return REPO_DIR / "configs"
