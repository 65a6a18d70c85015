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
