"""Where escpro finds its files.

Run-time files (taxonomies, role prompt templates, demo settings, the paper's result tables, the
bundled seeds) live inside the package, in `escpro/data/`, and are found through
`importlib.resources`, so a wheel installed anywhere finds them (docs/packaging.md). The
user-facing recipes in the checkout's top-level `configs/` (build/, train/, deepspeed/) are passed
by path and never read implicitly by the package at run time.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def data_path(*parts: str) -> Path:
    """A file or folder shipped in `escpro/data/`.

    A concrete Path because callers open files by name and templates load siblings; escpro is
    installed as a directory (never imported from a zip), where `files()` is already a Path.
    """
    res = files("escpro.data").joinpath(*parts)
    return Path(str(res))


def configs_dir() -> Path:
    """The checkout's `configs/` recipes (build/, train/, deepspeed/); absent in an installed wheel."""
    return REPO_DIR / "configs"
