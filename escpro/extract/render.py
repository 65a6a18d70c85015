"""Draw one tree: an indented text tree (always) and Graphviz DOT (rendered to SVG/PNG by the
`dot` binary when it is installed).

Marks: `*` node on a valid path, `E` end node, `G` gold (seed) node, `x` non-preferred sibling
(the rejected side of a pair). Unexpanded children are collapsed into one line/box, so trees of
hundreds of nodes stay readable.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from escpro.errors import EscproError
from escpro.extract.rules import TreeResult
from escpro.extract.tree import Node, Tree, strategy_name
from escpro.taxonomy import Taxonomy

GRAPHVIZ_TIMEOUT_S = 120.0  # `dot` on a big tree; past it the user is pointed at --max-depth

@dataclass(frozen=True)
class Marks:
    on_path: frozenset[str]
    rejected: frozenset[str]
    path_edges: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, tree: Tree, res: TreeResult | None) -> Marks:
        if res is None:
            return cls(frozenset(), frozenset(), frozenset())
        on = {nid for p in res.paths for nid in p.node_ids}
        edges = set()
        for p in res.paths:
            chain = [tree.root_id, *p.node_ids]
            edges.update(zip(chain, chain[1:], strict=False))
        return cls(frozenset(on), frozenset(p.rejected_id for p in res.pairs), frozenset(edges))


def _abbrev(node: Node, taxonomy: Taxonomy | None) -> str:
    name = strategy_name(node, taxonomy)
    if taxonomy is not None:
        for s in taxonomy.strategies:
            if s.name == name and s.abbrev:
                return s.abbrev
    return name or "?"


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _short(text: str | None, width: int) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= width else t[: width - 1] + "…"


def _flags(node: Node, marks: Marks) -> str:
    f = ("*" if node.node_id in marks.on_path else " ") + ("E" if node.ended else " ")
    f += "G" if node.is_gold else " "
    f += "x" if node.node_id in marks.rejected else " "
    return f


def render_text(
    tree: Tree,
    res: TreeResult | None,
    taxonomy: Taxonomy | None,
    *,
    max_depth: int | None = None,
    show_text: int = 0,
    only_paths: bool = False,
) -> str:
    """Indented tree. show_text > 0 appends that many characters of the supporter reply."""
    marks = Marks.of(tree, res)
    if tree.root_id is None:
        return f"{tree.tree_id}: no nodes stored"
    root = tree.node(tree.root_id)
    head = (
        f"tree {tree.tree_id}  status {tree.status or '?'}  iterations {tree.iterations if tree.iterations is not None else '?'}"
        f"  nodes {len(tree.nodes)}  valid paths {len(res.paths) if res else '?'}  pairs {len(res.pairs) if res else '?'}"
    )
    lines = [head, "marks: * on a valid path, E end, G gold, x non-preferred (rejected in a pair)",
             f"root  Q={_num(root.q, '.3f')} N={root.n if root.n is not None else '-'}  seeker: {_short(root.seeker_text, 70)}"]

    def walk(node_id: str, prefix: str, depth: int) -> None:
        kids = tree.kids(node_id)
        shown = [k for k in kids if k.kind != "unexpanded" or k.node_id in marks.on_path]
        hidden = [k for k in kids if k not in shown]
        if only_paths:
            shown = [k for k in shown if k.node_id in marks.on_path or k.node_id in marks.rejected]
            hidden = [k for k in kids if k not in shown]
        rows: list[tuple[str, Node | None]] = [("", k) for k in shown]
        if hidden:
            names = ", ".join(f"{_abbrev(k, taxonomy)} {_num(k.prior, '.2f')}" for k in sorted(hidden, key=lambda k: -(k.prior or 0))[:8])
            label = "unexpanded" if all(k.kind == "unexpanded" for k in hidden) else "hidden"
            rows.append((f"+{len(hidden)} {label} ({names}{', …' if len(hidden) > 8 else ''})", None))
        for i, (label, k) in enumerate(rows):
            last = i == len(rows) - 1
            branch = "└─ " if last else "├─ "
            if k is None:
                lines.append(f"{prefix}{branch}{label}")
                continue
            line = (
                f"{prefix}{branch}[{_flags(k, marks)}] {_abbrev(k, taxonomy):<4} "
                f"P={_num(k.prior, '.2f')} Q={_num(k.q, '+.3f')} N={k.n if k.n is not None else '-':<4}"
                f"  {k.node_id.rsplit('/', 1)[-1]}"
            )
            if show_text and k.has_reply:
                line += f"  | {_short(k.supporter_text, show_text)}"
            lines.append(line)
            if max_depth is None or depth + 1 < max_depth:
                walk(k.node_id, prefix + ("   " if last else "│  "), depth + 1)
            elif tree.children.get(k.node_id):
                lines.append(f"{prefix}{'   ' if last else '│  '}└─ … {len(tree.children[k.node_id])} children below depth {max_depth}")

    walk(tree.root_id, "", 0)
    return "\n".join(lines)


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(tree: Tree, res: TreeResult | None, taxonomy: Taxonomy | None, *, max_depth: int | None = None) -> str:
    """Graphviz DOT: valid paths green with bold edges, rejected siblings red, gold double border,
    end nodes as ellipses; unexpanded children collapsed into one grey box per parent."""
    marks = Marks.of(tree, res)
    out = [
        f"digraph {_dot_str(tree.tree_id)} {{",
        "  graph [rankdir=TB, nodesep=0.15, ranksep=0.35, fontname=Helvetica];",
        "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=Helvetica, fontsize=9];",
        "  edge [color=gray60, arrowsize=0.5];",
    ]
    if tree.root_id is None:
        return "\n".join(out + ["}"])
    root = tree.node(tree.root_id)
    root_label = _dot_str("root\nQ=" + _num(root.q, ".2f") + " N=" + str(root.n))
    out.append(f"  {_dot_str(root.node_id)} [label={root_label}, fillcolor=lightgoldenrod1];")

    def walk(node_id: str, depth: int) -> None:
        kids = tree.kids(node_id)
        hidden = [k for k in kids if k.kind == "unexpanded" and k.node_id not in marks.on_path]
        for k in kids:
            if k in hidden:
                continue
            label = f"{_abbrev(k, taxonomy)}\nP={_num(k.prior, '.2f')} Q={_num(k.q, '+.2f')} N={k.n}"
            attrs = {"label": _dot_str(label)}
            if k.node_id in marks.on_path:
                attrs["fillcolor"] = "palegreen"
            elif k.node_id in marks.rejected:
                attrs["fillcolor"] = "mistyrose"
            if k.ended:
                attrs["shape"] = "ellipse"
            if k.is_gold:
                attrs["peripheries"] = "2"
            if k.has_reply:
                attrs["tooltip"] = _dot_str(_short(k.supporter_text, 300))
            out.append(f"  {_dot_str(k.node_id)} [{', '.join(f'{a}={v}' for a, v in attrs.items())}];")
            edge = ' [color=forestgreen, penwidth=2.5]' if (node_id, k.node_id) in marks.path_edges else ""
            out.append(f"  {_dot_str(node_id)} -> {_dot_str(k.node_id)}{edge};")
            if max_depth is None or depth + 1 < max_depth:
                walk(k.node_id, depth + 1)
        if hidden:
            hid = f"{node_id}/+unexpanded"
            names = " ".join(_abbrev(k, taxonomy) for k in hidden)
            hid_label = _dot_str(f"+{len(hidden)} unexpanded" + "\n" + names)
            out.append(f"  {_dot_str(hid)} [label={hid_label}, fillcolor=gray95, fontcolor=gray40, style=\"rounded,filled,dashed\"];")
            out.append(f"  {_dot_str(node_id)} -> {_dot_str(hid)} [style=dashed];")

    walk(tree.root_id, 0)
    out.append("}")
    return "\n".join(out)


def dot_available() -> str | None:
    return shutil.which("dot")


def render_graphviz(dot_text: str, fmt: str) -> bytes:
    """SVG or PNG bytes from DOT via the `dot` binary (one-line errors, bounded time)."""
    exe = dot_available()
    if exe is None:
        raise EscproError(
            f"--format {fmt} needs Graphviz's `dot` (apt-get install graphviz / brew install graphviz); "
            "--format text and --format dot work without it"
        )
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True, timeout=GRAPHVIZ_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise EscproError(f"Graphviz took longer than {GRAPHVIZ_TIMEOUT_S:.0f} s; try --max-depth or --format text") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EscproError(f"Graphviz failed: {msg[0] if msg else f'exit code {proc.returncode}'}")
    return proc.stdout
