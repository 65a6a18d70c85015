"""The build lock: one writer per database FILE, whatever path or link names it.

The lock is an OS lock (flock) on the database file itself, so it belongs to the file's inode: a
symlink, a hard link or `./x/../trees.duckdb` reach the same lock, and the kernel drops it when
the build's process dies, even on kill -9. flock and DuckDB's own fcntl locks are independent on
Linux, so holding it does not get in the way of DuckDB or of `escpro query`. (The `filelock`
package locks a separate lock file named by a path -- a symlink gets its own -- and opens it with
O_TRUNC, so it cannot lock the database itself.) A missing file is first created (escpro's tables, no rows) to
have an inode to lock; if the build then stops before recording its run, that file is removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from escpro.errors import EscproError
from escpro.store.db import StoreError, connect, ensure_schema, sniff


class LockedError(EscproError):
    pass


class BuildLock:
    def __init__(self, db: Path, timeout_s: float = 30.0):
        self.db = Path(db)
        self.timeout_s = timeout_s
        self.created = False
        self._fd: int | None = None

    def acquire(self) -> None:
        target = self.db.resolve()
        if not target.exists():
            if not target.parent.is_dir():
                raise StoreError(f"{self.db}: directory {target.parent} does not exist")
            self.created = _create(target, self.timeout_s)
        else:
            sniff(target)  # a pipe would block the open below; other files fail here in one line
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise StoreError(f"{self.db}: cannot open ({exc.strerror})") from None
        import fcntl  # POSIX only, like the rest of the build's process handling

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self.created = False  # the other build owns it now
            raise LockedError(
                f"{self.db}: another escpro build is writing this file"
                f"{f' ({target})' if target != self.db.absolute() else ''}; wait for it or stop it first"
            ) from None
        self._fd = fd

    def release(self, recorded: bool = False) -> None:
        """Let go of the file; a file this lock created and no run was recorded in is removed.
        `recorded`: the build says it recorded its run (it finished), so the file is not opened
        again to look (one open of the file fewer at the end of a new build)."""
        if self._fd is None:
            return
        try:
            if self.created and not recorded:
                _remove_if_empty(self.db.resolve())
        finally:
            os.close(self._fd)
            self._fd = None


def _create(target: Path, timeout_s: float) -> bool:
    """Create the file with escpro's (empty) tables, atomically: written under a temporary name
    and linked into place, so a reader never meets a half-made file. False if another process
    created it first."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.new")
    try:
        con = connect(tmp, timeout_s=timeout_s)
        try:
            ensure_schema(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise StoreError(f"{target}: cannot create ({exc.strerror})") from None
    finally:
        for p in (tmp, Path(f"{tmp}.wal")):
            try:
                p.unlink()
            except OSError:
                pass


def _remove_if_empty(path: Path) -> None:
    try:
        con = connect(path, read_only=True, timeout_s=1.0)
    except EscproError:
        return
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database()").fetchall()}
        runs = con.execute("SELECT count(*) FROM runs").fetchone()[0] if "runs" in tables else 0
    finally:
        con.close()
    if runs == 0:
        for p in (path, Path(f"{path}.wal")):
            try:
                p.unlink()
            except OSError:
                pass
