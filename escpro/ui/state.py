"""What the app serves, opened once at start-up (so bad input fails before the server listens)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from escpro import __version__
from escpro.ui.judgements import JudgementStore
from escpro.ui.options import UiOptions
from escpro.ui.pairs import PairSource
from escpro.ui.study import Study, load_study
from escpro.ui.trees import TreeSource


@dataclass
class UiState:
    trees: TreeSource | None
    pairs: PairSource | None
    study: Study | None
    store: JudgementStore | None
    templates: Jinja2Templates


def build_state(opts: UiOptions) -> UiState:
    """Open everything once at start-up, so a bad input fails before the server listens."""
    trees = None
    if opts.db is not None:
        trees = TreeSource(opts.db, theta=opts.theta, rule=opts.rule, min_n=opts.reference_min_n,
                           lock_timeout_s=opts.lock_timeout_s)
        with trees.connect():
            pass  # an unreadable or non-escpro file fails here, with the store's one-line error
    pairs = PairSource(opts.pairs) if opts.pairs is not None else None
    if pairs is not None:
        pairs.all()
    study = store = None
    if opts.evals:
        study = load_study(opts.evals, items=opts.eval_items, seed=opts.eval_seed, testset=opts.testset)
        path = opts.judgements or opts.evals[0].resolve().parent / "judgements.sqlite"
        store = JudgementStore(path)
        store.register_study(study.study_id, json.dumps(study.describe(), ensure_ascii=False))
    env = Environment(loader=PackageLoader("escpro.ui", "templates"), autoescape=select_autoescape(default=True))
    templates = Jinja2Templates(env=env)
    return UiState(trees, pairs, study, store, templates)


def nav(st: UiState) -> dict:
    return {"has_trees": st.trees is not None, "has_pairs": st.pairs is not None,
            "has_eval": st.study is not None, "version": __version__}


def state(request: Request) -> UiState:
    return request.app.state.ui
