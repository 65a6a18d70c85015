"""The blind pairwise human evaluation: annotator sign-in, one task per page, a verdict saved per
click (JSON POST), the results table, CSV and JSON."""

from __future__ import annotations

import json
import re
from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse
from pydantic import BaseModel, Field

from escpro.errors import DataError
from escpro.ui import agreement
from escpro.ui.options import NotFound
from escpro.ui.state import nav, state
from escpro.ui.study import CRITERIA, CRITERION_KEYS

router = APIRouter()
NAME_RE = re.compile(r"^[\w .@'-]{1,64}$")


class VerdictIn(BaseModel):
    annotator: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1, max_length=64)
    criterion: Literal["acceptance", "effectiveness", "sensitivity", "satisfaction"]
    choice: Literal["A", "B", "tie"]


class CommentIn(BaseModel):
    annotator: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1, max_length=64)
    comment: str = Field(max_length=4000)


def _eval(request: Request):
    st = state(request)
    if st.study is None or st.store is None:
        raise DataError("no evaluation: start `escpro ui` with --evals RUN_DIR RUN_DIR ...")
    return st, st.study, st.store


def _annotator(name: str) -> str:
    name = " ".join(name.split())
    if not NAME_RE.match(name):
        raise DataError("annotator name: 1-64 letters, digits, spaces or . @ ' - _")
    return name


def _task(study, task_id: str):
    task = study.task(task_id)
    if task is None:
        raise NotFound(f"no task '{task_id}' in this study")
    return task


def results(st) -> tuple[list[agreement.Row], dict]:
    rows = agreement.table(st.store.verdicts(st.study.study_id), CRITERION_KEYS)
    return rows, st.study.describe()


@router.get("/eval")
def page_eval(request: Request, annotator: str = ""):
    st, study, store = _eval(request)
    if annotator:
        return RedirectResponse(f"/eval/task?{urlencode({'annotator': _annotator(annotator)})}", status_code=303)
    return st.templates.TemplateResponse(request, "eval.html", {
        **nav(st), "study": study.describe(), "annotators": store.annotators(study.study_id),
        "judgements": store.path})


@router.get("/eval/task")
def page_task(request: Request, annotator: str = Query(..., min_length=1), task: str = ""):
    st, study, store = _eval(request)
    name = _annotator(annotator)
    done = store.done_tasks(study.study_id, name, len(CRITERIA))
    if task:
        t = _task(study, task)
    else:
        t = next((x for x in study.tasks if x.task_id not in done), None)
    ctx = {**nav(st), "annotator": name, "done": len(done), "total": len(study.tasks)}
    if t is None:
        return st.templates.TemplateResponse(request, "eval_done.html", ctx)
    a = store.assignment(study.study_id, name, t.task_id, (t.system_x, t.system_y))
    item = study.items[t.item_id]
    choices, comment = store.choices(study.study_id, name, t.task_id)
    return st.templates.TemplateResponse(request, "eval_task.html", {
        **ctx, "task_id": t.task_id, "item": item, "criteria": CRITERIA,
        "reply_a": study.systems[a.a_system].replies.get(t.item_id, ""),
        "reply_b": study.systems[a.b_system].replies.get(t.item_id, ""),
        "choices": choices, "comment": comment, "position": study.tasks.index(t) + 1})


@router.post("/api/eval/verdict")
def api_verdict(request: Request, body: VerdictIn):
    st, study, store = _eval(request)
    name = _annotator(body.annotator)
    t = _task(study, body.task_id)
    a = store.assignment(study.study_id, name, t.task_id, (t.system_x, t.system_y))
    store.record(study.study_id, name, t.task_id, t.item_id, (t.system_x, t.system_y), a,
                 body.criterion, body.choice)
    choices, _ = store.choices(study.study_id, name, t.task_id)
    return {"saved": True, "criteria_done": len(choices), "complete": len(choices) == len(CRITERIA)}


@router.post("/api/eval/comment")
def api_comment(request: Request, body: CommentIn):
    st, study, store = _eval(request)
    t = _task(study, body.task_id)
    store.comment(study.study_id, _annotator(body.annotator), t.task_id, body.comment)
    return {"saved": True}


@router.get("/api/eval/study")
def api_study(request: Request):
    st, study, store = _eval(request)
    return {**study.describe(), "annotators": [{"name": n, "tasks": k} for n, k in store.annotators(study.study_id)],
            "judgements": str(store.path)}


@router.get("/api/eval/results")
def api_results(request: Request):
    st, _, _ = _eval(request)
    rows, desc = results(st)
    return json.loads(agreement.to_json(rows, desc))


@router.get("/eval/results.csv")
def csv_results(request: Request):
    st, _, _ = _eval(request)
    rows, _ = results(st)
    return PlainTextResponse(agreement.to_csv(rows), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="human_eval.csv"'})


@router.get("/eval/results")
def page_results(request: Request):
    st, study, store = _eval(request)
    rows, desc = results(st)
    labels = {k: f"{s.name} ({k})" for k, s in study.systems.items()}
    return st.templates.TemplateResponse(request, "results.html", {
        **nav(st), "rows": rows, "study": desc, "labels": labels,
        "criteria": {c[0]: c[1] for c in CRITERIA}, "annotators": store.annotators(study.study_id)})
