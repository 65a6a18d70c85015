"""The annotators' file: SQLite, one committed transaction per click.

A separate file from the tree database (which the UI never writes). SQLite in WAL mode with
synchronous=FULL: a judgement acknowledged to the browser survives a closed tab, a killed server
and a power cut. Each row is one annotator's verdict on one task for one criterion; the A/B order
shown to that annotator is drawn once (assignments) and copied into every verdict row, so the
blinding is auditable after the fact.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from escpro.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    study_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    study_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    task_id TEXT NOT NULL,
    a_system TEXT NOT NULL,
    b_system TEXT NOT NULL,
    served_at TEXT NOT NULL,
    PRIMARY KEY (study_id, annotator, task_id)
);
CREATE TABLE IF NOT EXISTS verdicts (
    study_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    task_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    system_x TEXT NOT NULL,
    system_y TEXT NOT NULL,
    a_system TEXT NOT NULL,
    b_system TEXT NOT NULL,
    criterion TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie')),
    outcome TEXT NOT NULL CHECK (outcome IN ('win', 'tie', 'lose')),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (study_id, annotator, task_id, criterion)
);
CREATE TABLE IF NOT EXISTS comments (
    study_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    task_id TEXT NOT NULL,
    comment TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (study_id, annotator, task_id)
);
"""


@dataclass(frozen=True)
class Assignment:
    task_id: str
    a_system: str
    b_system: str


@dataclass(frozen=True)
class Verdict:
    annotator: str
    task_id: str
    item_id: str
    system_x: str
    system_y: str
    criterion: str
    choice: str
    outcome: str
    a_system: str
    updated_at: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def outcome_of(choice: str, a_system: str, system_x: str) -> str:
    """The verdict from system_x's side: the annotator chose reply A, B or a tie."""
    if choice == "tie":
        return "tie"
    picked_a = choice == "A"
    return "win" if picked_a == (a_system == system_x) else "lose"


class JudgementStore:
    """Thread-safe (FastAPI runs sync endpoints in a thread pool): one connection, one lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.execute("PRAGMA busy_timeout=5000")
            self._con.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: cannot use as the judgement file ({exc})") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def _write(self, sql: str, params: tuple) -> None:
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                self._con.execute(sql, params)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, params).fetchall()

    def register_study(self, study_id: str, description: str) -> None:
        self._write("INSERT OR IGNORE INTO studies VALUES (?, ?, ?)", (study_id, description, _now()))

    def studies(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._read("SELECT study_id, description FROM studies ORDER BY created_at")]

    def assignment(self, study_id: str, annotator: str, task_id: str, pair: tuple[str, str]) -> Assignment:
        """The A/B order this annotator sees for this task: drawn at first sight, then fixed."""
        got = self._read(
            "SELECT a_system, b_system FROM assignments WHERE study_id=? AND annotator=? AND task_id=?",
            (study_id, annotator, task_id),
        )
        if got:
            return Assignment(task_id, got[0][0], got[0][1])
        a, b = pair if secrets.randbelow(2) == 0 else (pair[1], pair[0])
        self._write("INSERT OR IGNORE INTO assignments VALUES (?, ?, ?, ?, ?, ?)",
                    (study_id, annotator, task_id, a, b, _now()))
        got = self._read(
            "SELECT a_system, b_system FROM assignments WHERE study_id=? AND annotator=? AND task_id=?",
            (study_id, annotator, task_id),
        )
        return Assignment(task_id, got[0][0], got[0][1])

    def record(self, study_id: str, annotator: str, task_id: str, item_id: str, pair: tuple[str, str],
               assignment: Assignment, criterion: str, choice: str) -> str:
        outcome = outcome_of(choice, assignment.a_system, pair[0])
        self._write(
            "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (study_id, annotator, task_id, criterion) DO UPDATE SET "
            "choice=excluded.choice, outcome=excluded.outcome, updated_at=excluded.updated_at",
            (study_id, annotator, task_id, item_id, pair[0], pair[1], assignment.a_system,
             assignment.b_system, criterion, choice, outcome, _now()),
        )
        return outcome

    def comment(self, study_id: str, annotator: str, task_id: str, text: str) -> None:
        self._write(
            "INSERT INTO comments VALUES (?, ?, ?, ?, ?) ON CONFLICT (study_id, annotator, task_id) "
            "DO UPDATE SET comment=excluded.comment, updated_at=excluded.updated_at",
            (study_id, annotator, task_id, text, _now()),
        )

    def choices(self, study_id: str, annotator: str, task_id: str) -> tuple[dict[str, str], str]:
        rows = self._read(
            "SELECT criterion, choice FROM verdicts WHERE study_id=? AND annotator=? AND task_id=?",
            (study_id, annotator, task_id),
        )
        com = self._read("SELECT comment FROM comments WHERE study_id=? AND annotator=? AND task_id=?",
                         (study_id, annotator, task_id))
        return {r[0]: r[1] for r in rows}, (com[0][0] if com else "")

    def done_tasks(self, study_id: str, annotator: str, n_criteria: int) -> set[str]:
        """Tasks this annotator judged on every criterion."""
        rows = self._read(
            "SELECT task_id FROM verdicts WHERE study_id=? AND annotator=? GROUP BY task_id "
            "HAVING count(*) >= ?",
            (study_id, annotator, n_criteria),
        )
        return {r[0] for r in rows}

    def annotators(self, study_id: str) -> list[tuple[str, int]]:
        rows = self._read(
            "SELECT annotator, count(DISTINCT task_id) FROM verdicts WHERE study_id=? "
            "GROUP BY annotator ORDER BY annotator",
            (study_id,),
        )
        return [(r[0], r[1]) for r in rows]

    def verdicts(self, study_id: str) -> list[Verdict]:
        rows = self._read(
            "SELECT annotator, task_id, item_id, system_x, system_y, criterion, choice, outcome, "
            "a_system, updated_at FROM verdicts WHERE study_id=? ORDER BY updated_at, annotator, task_id",
            (study_id,),
        )
        return [Verdict(*r) for r in rows]


    def comments(self, study_id: str) -> dict[tuple[str, str], str]:
        rows = self._read("SELECT annotator, task_id, comment FROM comments WHERE study_id=?", (study_id,))
        return {(r[0], r[1]): r[2] for r in rows}


def open_existing(path: str | Path) -> JudgementStore:
    """For export: the file must exist already (never create an empty one by a typo)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such judgement file")
    return JudgementStore(p)
