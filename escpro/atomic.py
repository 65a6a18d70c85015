"""Outputs are written whole or not at all: the one atomic-write helper every writer uses.

A file is written to a temporary sibling (same directory, so the rename cannot cross file
systems), flushed and fsynced, then renamed over the target with os.replace (atomic on POSIX). A
failure at any point (disk full, an encoding error in the data, Ctrl-C) removes the temporary file
and leaves the target as it was, so a reader never sees half a file and a rerun starts clean.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path` for writing; on a clean exit it replaces `path`.
    `mode` is "w" (UTF-8 text) or "wb" (bytes)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None
    try:
        if mode == "wb":
            fh = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp):
            raise type(exc)(exc.errno, exc.strerror, str(target)) from None  # e.g. ENOSPC mid-write
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes) -> str:
    """Write `data` to `path` atomically; returns its sha256 (hex)."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def write_text(path: str | Path, text: str) -> str:
    """Write `text` as UTF-8 to `path` atomically; returns the sha256 of the bytes written.
    Text that cannot be encoded (a lone surrogate) raises before anything is written."""
    return write_bytes(path, text.encode("utf-8"))


def sha256_text(text: str) -> str:
    """sha256 (hex) of text's UTF-8 bytes: the same digest `write_text` returns for it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in bounded chunks (hashlib.file_digest)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
