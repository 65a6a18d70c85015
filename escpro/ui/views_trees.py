"""Pages and JSON endpoints over the tree file and the pairs directory (all read-only GETs)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from escpro.errors import DataError
from escpro.ui.state import nav, state
from escpro.ui.trees import TreeSource

router = APIRouter()

STATUSES = ("", "pending", "running", "done", "failed")
SORTS = ("tree_id", "iterations", "nodes", "valid_paths", "pairs", "status")


def _trees(request: Request) -> TreeSource:
    src = state(request).trees
    if src is None:
        raise DataError("no tree file: start `escpro ui` with --db FILE")
    return src


def filter_trees(rows: list[dict], *, q: str = "", status: str = "", min_iterations: int = 0,
                 min_nodes: int = 0, min_valid: int = 0, min_pairs: int = 0, sort: str = "tree_id",
                 desc: bool = False) -> list[dict]:
    q = q.strip().lower()

    def keep(r: dict) -> bool:
        text = " ".join(str(r.get(k) or "") for k in ("tree_id", "scene", "situation", "seed_id", "run_id")).lower()
        return ((not q or q in text) and (not status or r["status"] == status)
                and (r["iterations"] or 0) >= min_iterations and r["nodes"] >= min_nodes
                and r["valid_paths"] >= min_valid and r["pairs"] >= min_pairs)

    out = [r for r in rows if keep(r)]
    key = sort if sort in SORTS else "tree_id"
    return sorted(out, key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0), reverse=desc)


def _list_args(q: str, status: str, min_iterations: int, min_nodes: int, min_valid: int, min_pairs: int,
               sort: str, desc: bool) -> dict:
    if status not in STATUSES:
        raise DataError(f"status must be one of {', '.join(s for s in STATUSES if s)}")
    if sort not in SORTS:
        raise DataError(f"sort must be one of {', '.join(SORTS)}")
    return {"q": q, "status": status, "min_iterations": min_iterations, "min_nodes": min_nodes,
            "min_valid": min_valid, "min_pairs": min_pairs, "sort": sort, "desc": desc}


@router.get("/api/trees")
def api_trees(request: Request, q: str = "", status: str = "", min_iterations: int = Query(0, ge=0),
              min_nodes: int = Query(0, ge=0), min_valid: int = Query(0, ge=0), min_pairs: int = Query(0, ge=0),
              sort: str = "tree_id", desc: bool = False):
    args = _list_args(q, status, min_iterations, min_nodes, min_valid, min_pairs, sort, desc)
    rows = _trees(request).summaries()
    got = filter_trees(rows, **args)
    return {"total": len(rows), "matched": len(got), "trees": got}


@router.get("/trees")
def page_trees(request: Request, q: str = "", status: str = "", min_iterations: int = Query(0, ge=0),
               min_nodes: int = Query(0, ge=0), min_valid: int = Query(0, ge=0), min_pairs: int = Query(0, ge=0),
               sort: str = "tree_id", desc: bool = False):
    args = _list_args(q, status, min_iterations, min_nodes, min_valid, min_pairs, sort, desc)
    src = _trees(request)
    rows = src.summaries()
    st = state(request)
    return st.templates.TemplateResponse(request, "trees.html", {
        **nav(st), "rows": filter_trees(rows, **args), "total": len(rows), "args": args,
        "statuses": STATUSES, "sorts": SORTS, "runs": src.runs(), "db": src.path,
        "theta": src.theta, "rule": src.rule})


@router.get("/trees/{tree_id}")
def page_tree(request: Request, tree_id: str, focus: str = ""):
    src = _trees(request)
    lt = src.load(tree_id)
    root = lt.tree.nodes.get(lt.tree.root_id) if lt.tree.root_id else None
    st = state(request)
    return st.templates.TemplateResponse(request, "tree.html", {
        **nav(st), "tree": lt.tree, "result": lt.result, "root": src.node_json(lt, root) if root else None,
        "focus": focus, "theta": src.theta, "rule": src.rule,
        "end_nodes": sum(1 for n in lt.tree.nodes.values() if n.ended)})


@router.get("/api/trees/{tree_id}/children")
def api_children(request: Request, tree_id: str, node: str = Query(..., min_length=1)):
    return _trees(request).children(tree_id, node)


@router.get("/api/trees/{tree_id}/node")
def api_node(request: Request, tree_id: str, id: str = Query(..., min_length=1)):  # noqa: A002
    return _trees(request).detail(tree_id, id)


@router.get("/api/trees/{tree_id}")
def api_tree(request: Request, tree_id: str):
    src = _trees(request)
    lt = src.load(tree_id)
    t = lt.tree
    return {"tree_id": t.tree_id, "status": t.status, "iterations": t.iterations, "nodes": len(t.nodes),
            "root_id": t.root_id, "valid_paths": [list(p.node_ids) for p in lt.result.paths],
            "pairs": [[p.chosen_id, p.rejected_id] for p in lt.result.pairs], "reason": lt.result.reason}


# ---- pairs ----
def _pairs(request: Request):
    src = state(request).pairs
    if src is None:
        raise DataError("no pairs: start `escpro ui` with --pairs DIR (an `escpro extract --out` directory)")
    return src


@router.get("/api/pairs")
def api_pairs(request: Request, tree: str = "", strategy: str = "", offset: int = Query(0, ge=0),
              limit: int = Query(50, ge=1, le=500)):
    page = _pairs(request).page(tree=tree, strategy=strategy, offset=offset, limit=limit)
    return {"total": page.total, "offset": page.offset, "pairs": page.rows}


@router.get("/api/pairs/{index}")
def api_pair(request: Request, index: int):
    rec = dict(_pairs(request).get(index))
    rec["index"] = rec.pop("_index")
    return JSONResponse(rec)


@router.get("/pairs")
def page_pairs(request: Request, tree: str = "", strategy: str = "", offset: int = Query(0, ge=0)):
    src = _pairs(request)
    page = src.page(tree=tree, strategy=strategy, offset=offset, limit=50)
    st = state(request)
    return st.templates.TemplateResponse(request, "pairs.html", {
        **nav(st), "page": page, "tree": tree, "strategy": strategy, "dir": src.dir,
        "manifest": src.manifest(), "next": offset + 50 if offset + 50 < page.total else None,
        "prev": max(0, offset - 50) if offset else None})


@router.get("/pairs/{index}")
def page_pair(request: Request, index: int):
    src = _pairs(request)
    rec = src.get(index)
    st = state(request)
    nodes = {}
    if st.trees is not None and rec.get("tree_id"):
        try:  # trace: the nodes as the tree file has them now (the pairs may come from another build)
            lt = st.trees.load(str(rec["tree_id"]))
            for key in ("chosen_node_id", "rejected_node_id"):
                node = lt.tree.nodes.get(str(rec.get(key)))
                nodes[key] = st.trees.node_json(lt, node) if node else None
        except DataError:
            nodes = {"missing": True}
    return st.templates.TemplateResponse(request, "pair.html", {
        **nav(st), "rec": rec, "index": index, "nodes": nodes, "total": len(src.all())})
