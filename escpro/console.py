"""What the terminal shows: escpro's own lines and one escpro progress bar per long step; the
libraries' own bars, warnings and log lines only at `--log-level debug`.

Hugging Face transformers/datasets/hub, TRL, PEFT, accelerate and DeepSpeed each print their own
progress bars, advisory warnings and log records (DeepSpeed even on stdout, which breaks
`--json`). `configure()` runs once per command (cli_common.handle_errors) before any of them is
imported: environment switches for the ones read at import time, logger levels and a filter for
the ones already imported. `requiet()` re-applies it after a heavy import, because some
libraries reset their own logger levels when they load.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Loggers of libraries escpro drives. Their records reach the console only at --log-level debug
# (errors always do).
THIRD_PARTY = (
    "transformers", "datasets", "huggingface_hub", "trl", "peft", "accelerate", "DeepSpeed",
    "deepspeed", "torch", "matplotlib", "PIL", "absl", "httpx", "httpcore", "httpcore2", "urllib3",
    "filelock", "fsspec", "asyncio", "outlines", "llguidance", "llama_cpp", "vllm", "tensorboard",
    "wandb", "jieba", "numexpr", "sklearn",
)
# Read by the libraries when they are imported (only set when the user has not set them).
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TRL_EXPERIMENTAL_SILENCE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}

_state = {"quiet": False}


class _ErrorsOnly(logging.Filter):
    """Attached to loggers that set their own level and handler at import (DeepSpeed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


_ERRORS_ONLY = _ErrorsOnly()


def is_quiet() -> bool:
    return _state["quiet"]


def configure(log_level: str = "warning") -> None:
    """Third-party output on at debug, off otherwise; call before the libraries are imported."""
    quiet = str(log_level).lower() != "debug"
    _state["quiet"] = quiet
    if not quiet:
        for name in THIRD_PARTY:
            lg = logging.getLogger(name)
            if _ERRORS_ONLY in lg.filters:
                lg.removeFilter(_ERRORS_ONLY)
                lg.setLevel(logging.NOTSET)
        return
    for key, val in QUIET_ENV.items():
        os.environ.setdefault(key, val)
    requiet()


def requiet() -> None:
    """Apply the quiet settings to libraries already imported (idempotent, cheap)."""
    if not _state["quiet"]:
        return
    for name in THIRD_PARTY:
        lg = logging.getLogger(name)
        lg.setLevel(logging.ERROR)
        if _ERRORS_ONLY not in lg.filters:
            lg.addFilter(_ERRORS_ONLY)
    # Library warnings (deprecations inside transformers/TRL, torch notices): not the user's to act
    # on. escpro's own warnings still show.
    warnings.filterwarnings("ignore", category=Warning)
    warnings.filterwarnings("default", category=Warning, module=r"escpro(\.|$)")
    mods = sys.modules
    if "huggingface_hub" in mods:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in mods:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "datasets" in mods:
        from datasets.utils import disable_progress_bars as ds_disable

        ds_disable()


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def escape_control(text: str) -> str:
    """Make text safe to print in a terminal cell: control characters (ANSI escapes included)
    become visible escapes, so data from a model cannot move the cursor or recolour the screen."""
    return text.translate(_CONTROL)
