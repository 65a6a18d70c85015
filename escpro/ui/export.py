"""`escpro ui export`: the verdicts of one study as the paper's table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from escpro.errors import DataError
from escpro.ui import agreement
from escpro.ui.judgements import Verdict, open_existing
from escpro.ui.study import CRITERION_KEYS


@dataclass(frozen=True)
class ExportResult:
    study_id: str
    study: dict
    rows: list[agreement.Row]
    annotators: list[tuple[str, int]]
    files: list[str]

    def as_dict(self) -> dict:
        return {"study_id": self.study_id, "study": self.study, "rows": [asdict(r) for r in self.rows],
                "annotators": [{"name": n, "tasks": k} for n, k in self.annotators], "files": self.files}

    def text(self) -> str:
        names = ", ".join(f"{n} ({k} tasks)" for n, k in self.annotators) or "none"
        out = [f"study {self.study_id}: annotators {names}", agreement.to_text(self.rows)]
        out += [f"wrote {f}" for f in self.files]
        return "\n".join(out)


def _pick(studies: list[tuple[str, str]], study_id: str | None, path: Path) -> tuple[str, dict]:
    if not studies:
        raise DataError(f"{path}: holds no study yet")
    if study_id is None:
        if len(studies) > 1:
            raise DataError(f"{path}: holds {len(studies)} studies ({', '.join(s for s, _ in studies)}): pass --study ID")
        sid, desc = studies[0]
    else:
        got = [s for s in studies if s[0] == study_id]
        if not got:
            raise DataError(f"{path}: no study '{study_id}' (has {', '.join(s for s, _ in studies)})")
        sid, desc = got[0]
    return sid, json.loads(desc)


def verdicts_csv(verdicts: list[Verdict], comments: dict[tuple[str, str], str]) -> str:
    """Every verdict as given (the raw data behind the table), with the A/B order and comment."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["annotator", "item_id", "task_id", "system_x", "system_y", "shown_as_a", "criterion",
                "choice", "outcome", "comment", "updated_at"])
    for v in sorted(verdicts, key=lambda v: (v.annotator, v.task_id, CRITERION_KEYS.index(v.criterion))):
        w.writerow([v.annotator, v.item_id, v.task_id, v.system_x, v.system_y, v.a_system, v.criterion,
                    v.choice, v.outcome, comments.get((v.annotator, v.task_id), ""), v.updated_at])
    return buf.getvalue()


def export_study(judgements: str | Path, *, study_id: str | None = None, out: str | Path | None = None) -> ExportResult:
    path = Path(judgements)
    store = open_existing(path)
    try:
        sid, desc = _pick(store.studies(), study_id, path)
        verdicts = store.verdicts(sid)
        rows = agreement.table(verdicts, CRITERION_KEYS)
        annotators = store.annotators(sid)
        comments = store.comments(sid)
    finally:
        store.close()
    files = []
    if out is not None:
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        for name, text in (("human_eval.csv", agreement.to_csv(rows)), ("human_eval.json", agreement.to_json(rows, desc)),
                           ("verdicts.csv", verdicts_csv(verdicts, comments))):
            tmp = d / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(d / name)
            files.append(str(d / name))
    return ExportResult(sid, desc, rows, annotators, files)
