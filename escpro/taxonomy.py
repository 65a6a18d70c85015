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
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from escpro.errors import ConfigError
from escpro.fileformat import validate_file
from escpro.paths import data_path
from escpro.yamlfile import load_bounded

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


class StrategyEntry(BaseModel):
    """One strategy as written in a taxonomy file."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    definition: str
    abbrev: str = ""

    @field_validator("definition")
    @classmethod
    def _one_line(cls, v: str) -> str:
        return " ".join(v.split())


class TaxonomyFile(BaseModel):
    """The YAML shape of a taxonomy (escpro/data/taxonomy/*.yaml)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1)]
    description: str = ""
    strategies: Annotated[list[StrategyEntry], Field(min_length=1)]
    mapping: dict[str, str] = Field(default_factory=dict, description="source label -> strategy name")

    @field_validator("mapping", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v

    @model_validator(mode="after")
    def _consistent(self) -> TaxonomyFile:
        issues = []
        keys = [normalise_label(s.name) for s in self.strategies]
        dups = sorted({s.name for s, k in zip(self.strategies, keys, strict=True) if keys.count(k) > 1})
        if dups:
            issues.append(f"strategies: duplicate strategy names {dups}")
        names = {normalise_label(s.name): s.name for s in self.strategies}
        for src, dst in self.mapping.items():
            if normalise_label(dst) not in names:
                issues.append(f"mapping.{src}: '{dst}' is not a strategy of this taxonomy")
        if issues:
            raise ValueError("; ".join(issues))
        self.mapping = {src: names[normalise_label(dst)] for src, dst in self.mapping.items()}
        return self

    def taxonomy(self, source: str) -> Taxonomy:
        return Taxonomy(
            name=self.name,
            strategies=tuple(Strategy(s.name, s.definition, s.abbrev) for s in self.strategies),
            mapping=dict(self.mapping),
            description=self.description,
            source=source,
        )


def _from_dict(data: object, source: str) -> Taxonomy:
    return validate_file(TaxonomyFile, data, source).taxonomy(source)


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
    return _from_dict(load_bounded(path, "taxonomy file"), str(path))
