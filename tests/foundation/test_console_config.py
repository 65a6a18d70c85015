"""escpro.console: the libraries' log records are hidden at the default level and come back at
--log-level debug; the control-character escape used by table output."""

from __future__ import annotations

import logging

from escpro.console import configure, escape_controls


def test_quiet_by_default_loud_at_debug(monkeypatch):
    for key in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(key, raising=False)
    ds = logging.getLogger("DeepSpeed")
    try:
        configure("warning")
        import os

        assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1"
        assert not logging.getLogger("transformers.trainer").isEnabledFor(logging.WARNING)
        assert not ds.filter(logging.LogRecord("DeepSpeed", logging.WARNING, "", 0, "Setting accelerator", None, None))
        assert ds.filter(logging.LogRecord("DeepSpeed", logging.ERROR, "", 0, "broken", None, None))
        configure("debug")
        assert ds.filter(logging.LogRecord("DeepSpeed", logging.WARNING, "", 0, "Setting accelerator", None, None))
        assert logging.getLogger("transformers").level == logging.NOTSET
    finally:
        configure("debug")  # leave the test process's loggers as they were


def test_escape_controls_in_table_cells():
    assert escape_controls("a\x1b[31mb\nc\td\x7f", keep="") == "a\\e[31mb\\nc\\td\\x7f"
    assert escape_controls("plain ünïcode ✓", keep="") == "plain ünïcode ✓"
