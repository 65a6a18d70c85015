"""The package's import graph, computed from the source: no cycle among module-level imports, and
no module importing from a higher layer (lazy imports inside functions included). The layers are
documented in the README ("Layers"); a new module must be placed in one here."""

from __future__ import annotations

import ast
from collections import defaultdict
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "escpro"

# Lowest first. A module may import from its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("escpro", "escpro.bundled_model", "escpro.errors", "escpro.atomic", "escpro.console", "escpro.jsonl",
                    "escpro.paths", "escpro.paper_defaults", "escpro.config_base",
                    "escpro.fileformat", "escpro.yamlfile", "escpro.taxonomy", "escpro.dialogue",
                    "escpro.formatting", "escpro.aio", "escpro.progress", "escpro.tiny_model",
                    "escpro.data", "escpro.data.*")),
    ("section configs", ("escpro.mcts.config", "escpro.roles.config", "escpro.extract.config",
                         "escpro.train.config", "escpro.train.methods", "escpro.evaluate.config")),
    ("composed config", ("escpro.config",)),
    ("domain", ("escpro.seeds", "escpro.seeds.*", "escpro.store", "escpro.store.*",
                "escpro.roles", "escpro.roles.*")),
    ("algorithm", ("escpro.mcts", "escpro.mcts.*")),
    ("stages", ("escpro.build", "escpro.build.*", "escpro.extract", "escpro.extract.*",
                "escpro.train", "escpro.train.*", "escpro.evaluate", "escpro.evaluate.*",
                "escpro.queries")),
    ("apps", ("escpro.demo", "escpro.demo.*", "escpro.ui", "escpro.ui.*")),
    ("cli", ("escpro.cli", "escpro.cli_common", "escpro.commands", "escpro.commands.*",
             "escpro.__main__")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The most specific pattern wins (escpro.roles.config is a section config, not domain)."""
    best: tuple[int, int] | None = None
    for i, (_, patterns) in enumerate(LAYERS):
        for pat in patterns:
            if fnmatchcase(module, pat):
                score = len(pat.replace("*", ""))
                if best is None or score > best[0]:
                    best = (score, i)
    assert best is not None, f"{module}: in no layer; add it to LAYERS in {__file__}"
    return best[1]


def imports() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level imports, all imports) of every escpro module, escpro targets only."""
    top: dict[str, set[str]] = defaultdict(set)
    every: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        mod = module_name(path)

        def visit(node: ast.AST, at_top: bool, mod: str = mod) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                    continue  # annotations only: no runtime edge
                here = at_top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                names: list[str] = []
                if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                    names = [child.module]
                elif isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                for name in names:
                    if name == "escpro" or name.startswith("escpro."):
                        every[mod].add(name)
                        if here:
                            top[mod].add(name)
                visit(child, here)

        visit(ast.parse(path.read_text(encoding="utf-8")), True)
        top.setdefault(mod, set())
    return top, every


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative enough here)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycle():
    top, _ = imports()
    assert cycles(top) == []


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_from_a_higher_layer():
    """A lazy import inside a function of the same package is allowed (the training method
    registry names its trainer classes and resolves them when a run starts); every other import,
    lazy or not, goes down or sideways."""
    top, every = imports()
    bad = []
    for mod, targets in sorted(every.items()):
        for target in sorted(targets):
            lazy_in_package = target not in top[mod] and package(target) == package(mod)
            if layer_of(target) > layer_of(mod) and not lazy_in_package:
                bad.append(f"{mod} ({LAYERS[layer_of(mod)][0]}) imports {target} "
                           f"({LAYERS[layer_of(target)][0]})")
    assert bad == []


def test_the_checks_can_fail():
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert layer_of("escpro.roles.config") < layer_of("escpro.roles.prompts") < layer_of("escpro.cli")
