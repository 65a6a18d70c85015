"""A pairwise human-evaluation study over `escpro eval run` directories (paper 5.2.2).

Each run directory holds run.json (its name, identity and test set path) and predictions.jsonl
(escpro/evaluate/run.py). A task is one test item judged for one pair of systems; the systems of
a pair are ordered once (by directory name) so that "win" always means the first one won, while
annotators see the two replies as A and B in an order drawn per annotator and task (recorded).

All annotators get the tasks in the same shuffled order, so partial work overlaps as much as
possible (Fleiss' kappa needs items rated by several annotators).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from escpro.errors import DataError
from escpro.evaluate.testsets import TestItem, read_items
from escpro.taxonomy import load_taxonomy

# Paper section 5.2.2 (Table 3) and appendix C.2 (after Kang et al. 2024): the four criteria of
# the pairwise comparison, with the definitions given to annotators.
CRITERIA: tuple[tuple[str, str, str], ...] = (
    ("acceptance", "Acceptance", "Which reply is more acceptable in general?"),
    ("effectiveness", "Effectiveness", "Which reply better addresses the seeker's concerns?"),
    ("sensitivity", "Sensitivity", "Which reply better perceives and responds to the seeker's emotions?"),
    ("satisfaction", "Satisfaction", "Overall, which reply would leave the seeker more satisfied?"),
)
CRITERION_KEYS = tuple(c[0] for c in CRITERIA)


@dataclass(frozen=True)
class System:
    key: str  # the run directory's name: stable across restarts, unique within a study
    name: str  # run.json name (shown only in results, never to annotators)
    method: str
    run_dir: str
    replies: dict[str, str]  # item id -> reply (the strategy prefix removed)


@dataclass(frozen=True)
class Task:
    task_id: str
    item_id: str
    system_x: str  # "win" = this system's reply was judged better
    system_y: str


@dataclass(frozen=True)
class Study:
    study_id: str
    testset: str
    testset_sha256: str
    systems: dict[str, System]
    items: dict[str, TestItem]
    tasks: tuple[Task, ...]  # in the order every annotator receives them

    def task(self, task_id: str) -> Task | None:
        return self._by_id.get(task_id)

    @cached_property
    def _by_id(self) -> dict[str, Task]:
        return {t.task_id: t for t in self.tasks}

    def describe(self) -> dict:
        return {
            "study_id": self.study_id,
            "testset": self.testset,
            "testset_sha256": self.testset_sha256,
            "systems": [{"key": s.key, "name": s.name, "method": s.method, "run_dir": s.run_dir}
                        for s in self.systems.values()],
            "items": len(self.items),
            "tasks": len(self.tasks),
        }


def _read_run(run_dir: Path) -> tuple[dict, dict[str, str]]:
    meta_path, pred_path = run_dir / "run.json", run_dir / "predictions.jsonl"
    if not meta_path.is_file() or not pred_path.is_file():
        raise DataError(f"{run_dir}: not an `escpro eval run` directory (needs run.json and predictions.jsonl)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    replies: dict[str, str] = {}
    with pred_path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of an interrupted run (eval run redoes it too)
            if isinstance(row, dict) and "id" in row:
                replies[str(row["id"])] = str(row.get("response_pred") or "")
    return meta, replies


def task_id_of(item_id: str, x: str, y: str) -> str:
    """Opaque, so the page an annotator sees names neither system."""
    return "t" + hashlib.sha256(f"{item_id}\x1f{x}\x1f{y}".encode()).hexdigest()[:15]


def study_id_of(keys: list[str], testset_sha: str) -> str:
    return hashlib.sha256("\x1f".join([testset_sha, *sorted(keys)]).encode()).hexdigest()[:12]


def load_study(run_dirs: list[Path] | tuple[Path, ...], *, items: int | None = None, seed: int = 0,
               testset: Path | None = None) -> Study:
    """Check the runs share one test set and build the task list (typed, deterministic)."""
    systems: dict[str, System] = {}
    metas = []
    for d in run_dirs:
        d = Path(d)
        meta, replies = _read_run(d)
        key = d.resolve().name
        if key in systems:
            raise DataError(f"--evals: two run directories are named '{key}'; rename one")
        systems[key] = System(key, str(meta.get("name") or key), str(meta.get("method") or "-"), str(d), replies)
        metas.append((d, meta))
    shas = {(m.get("identity") or {}).get("testset_sha256") for _, m in metas}
    if len(shas) != 1 or None in shas:
        listed = ", ".join(f"{d.name}: {str((m.get('identity') or {}).get('testset_sha256'))[:12]}" for d, m in metas)
        raise DataError(f"--evals: the runs were not made on the same test set ({listed})")
    sha = shas.pop()
    ts_path = testset or Path(metas[0][1].get("testset") or "")
    if not ts_path.is_file():
        raise DataError(f"test set {ts_path} (from {metas[0][0] / 'run.json'}) not found: pass --testset FILE")
    tax = load_taxonomy(metas[0][1].get("taxonomy") or "cso8")
    all_items = {it.id: it for it in read_items(ts_path, tax)}
    common = [i for i in all_items if all(i in s.replies for s in systems.values())]
    if not common:
        raise DataError("--evals: no test item has a prediction in every run")
    rng = random.Random(seed)
    if items is not None and items < len(common):
        common = sorted(rng.sample(common, items), key=list(all_items).index)
    keys = sorted(systems)
    tasks = [Task(task_id_of(i, x, y), i, x, y) for i in common for x, y in itertools.combinations(keys, 2)]
    random.Random(f"order:{seed}").shuffle(tasks)
    return Study(study_id_of(keys, sha), str(ts_path), sha, {k: systems[k] for k in keys},
                 {i: all_items[i] for i in common}, tuple(tasks))
