"""What the terminal shows: escpro's own lines and one escpro progress bar per long step; the
libraries' own bars, warnings and log lines only at `--log-level debug`.

Hugging Face transformers/datasets/hub, TRL, PEFT, accelerate and DeepSpeed each print their own
progress bars, advisory warnings and log records (DeepSpeed even on stdout, which breaks
`--json`). `configure()` runs once per command (cli_common.handle_errors) before any of them is
imported: environment switches for the ones read at import time, logger levels and a filter for
the ones already imported. `requiet()` re-applies it after a heavy import, because some
libraries reset their own logger levels when they load.

Data from seeds and models is escaped before it is printed: an ESC sequence in a seed would
otherwise recolour, move the cursor or retitle the user's terminal when `escpro tree` or `escpro
query` prints it. escape_controls() shows C0/C1 control characters, the bidirectional overrides
and lone surrogates as visible escapes; JSON output needs nothing (json.dumps escapes them).
"""

from __future__ import annotations

import logging
import os
import re
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


# C0 controls, DEL, C1 controls, bidi embedding/override/isolate marks, lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, keep: str = "\n\t") -> str:
    """`text` with every control character but those in `keep` written as a visible escape
    (ESC -> "\\e", CR -> "\\r", others "\\xNN" / "\\uNNNN"). Pure and cheap when there is
    nothing to escape."""
    if not _CONTROL.search(text):
        return text
    if not keep:
        return _CONTROL.sub(_escape, text)
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
