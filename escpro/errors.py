"""User-facing errors.

Anything a user can cause (a bad file, a missing model, an unbuilt feature) is raised as an
EscproError whose message is one line; the CLI prints it and exits non-zero, never a traceback.
"""

from __future__ import annotations


class EscproError(Exception):
    """An error whose message is meant for the user, as one line."""

    exit_code = 1


class ConfigError(EscproError):
    """A config file or option is invalid ("file: key.path: what is wrong")."""

    exit_code = 2


class DataError(EscproError):
    """An input data file is malformed ("file: record N: what is wrong")."""


class NotBuiltError(EscproError):
    """A command or backend whose implementation has not landed yet."""

    exit_code = 3


class BackendUnavailable(EscproError):
    """A backend cannot run on this machine (no GPU, package not installed)."""


class OutputError(EscproError):
    """An output could not be written (directory missing or read-only, disk full)."""


# --- turning any exception into one line ------------------------------------------------------
# The CLI boundary (cli_common.handle_errors) calls user_error() on whatever a command raised:
# errors a user can cause become EscproErrors naming the file and what to do; anything else is a
# bug, reported in one line too (the traceback only at --log-level debug).

_ERRNO_HINTS = {
    "ENOENT": "no such file or directory: check the path",
    "EISDIR": "is a directory, a file was expected",
    "ENOTDIR": "a part of the path is not a directory",
    "EACCES": "permission denied: choose a writable location or fix the permissions",
    "EPERM": "operation not permitted: choose another location",
    "EROFS": "read-only file system: choose a writable location",
    "ENOSPC": "no space left on the device: free some space (nothing committed was lost; "
              "a build continues with --resume)",
    "EDQUOT": "disk quota exceeded: free some space",
    "EFBIG": "file too large for this file system or limit",
    "EEXIST": "already exists",
    "ENAMETOOLONG": "file name too long",
    "EADDRINUSE": "address already in use: choose another port (or stop what listens there)",
    "EADDRNOTAVAIL": "address not available on this machine: choose another host",
    "ECONNREFUSED": "connection refused: is the server running?",
    "EMFILE": "too many open files: raise the limit (ulimit -n)",
}


def _errno_hint(exc: OSError) -> str:
    import errno

    name = errno.errorcode.get(exc.errno or -1, "")
    return _ERRNO_HINTS.get(name) or (exc.strerror or str(exc) or type(exc).__name__)


def first_line(text: object, limit: int = 300) -> str:
    """The first non-empty line of a message, shortened: errors print as exactly one line."""
    for line in str(text).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def user_error(exc: BaseException, subject: str | None = None) -> EscproError | None:
    """The one-line EscproError a user-caused exception means, or None for a bug.

    `subject` names the file the error is about when the exception does not carry it (a
    decode error knows its bytes, not its file)."""
    if isinstance(exc, EscproError):
        return exc
    where = f"{subject}: " if subject else ""
    if isinstance(exc, OSError):
        path = exc.filename if exc.filename is not None else subject
        loc = f"{path}: " if path is not None else ""
        out = OutputError if getattr(exc, "errno", None) in _write_errnos() else DataError
        return out(f"{loc}{_errno_hint(exc)}")
    if isinstance(exc, UnicodeDecodeError):
        byte = bytes(exc.object[exc.start:exc.start + 1]).hex()
        return DataError(f"{where}not UTF-8 text (byte 0x{byte} at offset {exc.start}): "
                         "give a UTF-8 text file")
    if isinstance(exc, UnicodeEncodeError):
        return DataError(f"{where}text that cannot be written as UTF-8 ({exc.reason}, "
                         f"{exc.object[exc.start:exc.end]!r}): fix the input text")
    if isinstance(exc, RecursionError):
        return DataError(f"{where}nested too deeply to read (thousands of levels): "
                         "not a file escpro reads")
    if isinstance(exc, MemoryError):
        return DataError(f"{where}too large to load into memory")
    pyd = _pydantic_error(exc, subject)
    if pyd is not None:
        return pyd
    return _duckdb_error(exc, where)


def _write_errnos() -> set[int]:
    import errno

    return {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG}


def _pydantic_error(exc: BaseException, subject: str | None) -> EscproError | None:
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, ValidationError):
        return None
    errs = exc.errors()
    if not errs:
        return ConfigError(f"{subject or exc.title}: invalid")
    e = errs[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return ConfigError(f"{subject or exc.title}: {loc}: {first_line(msg)}{more}")


def _duckdb_error(exc: BaseException, where: str) -> EscproError | None:
    import sys

    duckdb = sys.modules.get("duckdb")  # only if a command used it
    if duckdb is None or not isinstance(exc, duckdb.Error):
        return None
    msg = first_line(exc)
    if "No space left on device" in msg or "Disk quota exceeded" in msg:
        return OutputError(f"{where}no space left on the device ({msg[:160]}): free some space; "
                           "what was committed is kept (a build continues with --resume)")
    if "not a valid DuckDB database file" in msg or "Could not read from file" in msg:
        return DataError(f"{where}{msg} (not a DuckDB file escpro wrote: check the path)")
    if isinstance(exc, getattr(duckdb, "IOException", ())) and "lock" in msg.lower():
        return DataError(f"{where}{msg} (another program has the file open for writing)")
    return DataError(f"{where}DuckDB: {msg}")
