"""Strategy taxonomies as data: names, definitions and source-label mappings.

Every stage (seed loading, prompts, extraction, evaluation) takes a taxonomy name or file so that
the same code serves the paper's 8 CSO strategies and ESConv's 8 (Kang et al.'s test set).
Labels are matched case- and whitespace-insensitively because real seed files are inconsistent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from escpro.errors import ConfigError
from escpro.paths import data_path

BUILTIN = ("cso8", "esconv8")


def normalise_label(label: str) -> str:
    """Case- and whitespace-insensitive key for a strategy label."""
    return re.sub(r"\s+", " ", label).strip().lower()


@dataclass(frozen=True)
class Strategy:
    name: str
    definition: str
    abbrev: str = ""


@dataclass(frozen=True)
class Taxonomy:
    name: str
    strategies: tuple[Strategy, ...]
    mapping: dict[str, str] = field(default_factory=dict)  # source label -> strategy name
    description: str = ""
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.strategies]

    def __len__(self) -> int:
        return len(self.strategies)

    def index(self, name: str) -> int:
        """Position of a canonical strategy name (KeyError if unknown)."""
        canon = self.canonical(name)
        if canon is None:
            raise KeyError(name)
        return self.names.index(canon)

    def canonical(self, label: str | None) -> str | None:
        """The taxonomy's name for a source label, or None when the label is unknown/empty.
        Answers are memoised per taxonomy (a build asks for the same few labels on every call;
        hashing the taxonomy for the lookup table and the regex cost ~10 us each time)."""
        if label is None:
            return None
        memo = self.__dict__.get("_canonical_memo")
        if memo is None:
            memo = self.__dict__["_canonical_memo"] = {}
        hit = memo.get(label, memo)
        if hit is not memo:
            return hit
        out = self._lookup().get(normalise_label(label))
        if len(memo) < 4096:
            memo[label] = out
        return out

    def definition(self, name: str) -> str:
        canon = self.canonical(name)
        for s in self.strategies:
            if s.name == canon:
                return s.definition
        raise KeyError(name)

    def _lookup(self) -> dict[str, str]:
        return _lookup_table(self)


@lru_cache(maxsize=32)
def _lookup_table(tax: Taxonomy) -> dict[str, str]:
    table = {normalise_label(s.name): s.name for s in tax.strategies}
    for s in tax.strategies:
        if s.abbrev:
            table.setdefault(normalise_label(s.abbrev), s.name)
    for src, dst in tax.mapping.items():
        table[normalise_label(src)] = dst
    return table


# Taxonomy holds a dict, so it is not hashable by default; identity hashing is enough for caching.
Taxonomy.__hash__ = object.__hash__  # type: ignore[method-assign]


def _from_dict(data: object, source: str) -> Taxonomy:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: taxonomy must be a mapping with 'name' and 'strategies'")
    unknown = set(data) - {"name", "description", "strategies", "mapping"}
    if unknown:
        raise ConfigError(f"{source}: {sorted(unknown)[0]}: unknown key")
    name = data.get("name")
    items = data.get("strategies")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: name: a non-empty string is required")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{source}: strategies: a non-empty list is required")
    strategies = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{source}: strategies.{i}: needs 'name' and 'definition'")
        if not isinstance(item.get("definition"), str):
            raise ConfigError(f"{source}: strategies.{i}.definition: a string is required")
        extra = set(item) - {"name", "definition", "abbrev"}
        if extra:
            raise ConfigError(f"{source}: strategies.{i}.{sorted(extra)[0]}: unknown key")
        strategies.append(
            Strategy(item["name"].strip(), " ".join(item["definition"].split()), item.get("abbrev", ""))
        )
    keys = [normalise_label(s.name) for s in strategies]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{source}: strategies: duplicate strategy names")
    mapping = data.get("mapping") or {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: mapping: a mapping of source label -> strategy is required")
    names = {normalise_label(s.name): s.name for s in strategies}
    resolved = {}
    for src, dst in mapping.items():
        if normalise_label(str(dst)) not in names:
            raise ConfigError(f"{source}: mapping.{src}: '{dst}' is not a strategy of this taxonomy")
        resolved[str(src)] = names[normalise_label(str(dst))]
    return Taxonomy(
        name=name,
        strategies=tuple(strategies),
        mapping=resolved,
        description=str(data.get("description", "")),
        source=source,
    )


@lru_cache(maxsize=16)
def load_taxonomy(name_or_path: str = "cso8") -> Taxonomy:
    """A built-in taxonomy by name (cso8, esconv8) or a YAML file of the same shape."""
    path = Path(name_or_path)
    if not path.suffix:
        path = data_path("taxonomy") / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(
                f"unknown taxonomy '{name_or_path}': use one of {', '.join(BUILTIN)} or a YAML file"
            )
    if not path.exists():
        raise ConfigError(f"{path}: taxonomy file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return _from_dict(data, str(path))
