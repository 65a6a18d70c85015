"""Turn-level test items from held-out seed dialogues, and reading test-set files.

An item is one supporter turn to predict: the context before it, its gold strategy (or null when
the source has none: such items count toward ROUGE-L only) and its gold reply. The JSONL layout
is the ExTES test-context layout (scene, description, context [{role: User|Supporter, text}],
gold_response) plus `id` and `strategy_gold`, so published ExTES test contexts load as they are.

Two builders:
- `turn_items`: every gold supporter turn with its whole preceding dialogue (the ExTES test set).
- `kang_items`: Kang et al. 2024's strategy test set: a window of 5-15 utterances before the
  target turn, earlier supporter turns labelled with their strategies.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from escpro.atomic import atomic_open
from escpro.dialogue import Speaker, Utterance
from escpro.errors import DataError
from escpro.jsonl import iter_objects
from escpro.seeds.model import Dialogue
from escpro.taxonomy import Taxonomy

# The ExTES file layout names the speakers User and Supporter.
ROLE_NAMES = {"seeker": "User", "supporter": "Supporter"}
_SPEAKER_ALIASES = {
    "user": "seeker", "seeker": "seeker", "usr": "seeker", "human": "seeker",
    "supporter": "supporter", "assistant": "supporter", "ai": "supporter", "sys": "supporter",
    "system": "supporter", "bot": "supporter",
}
# Kang et al. 2024 sample context windows of 5 to 15 utterances.
KANG_MIN_WINDOW = 5
KANG_MAX_WINDOW = 15


@dataclass(frozen=True)
class TestItem:
    id: str
    scene: str
    description: str
    context: tuple[Utterance, ...]
    gold_response: str
    strategy_gold: str | None
    meta: dict = field(default_factory=dict, compare=False)

    def to_record(self) -> dict:
        ctx = []
        for t in self.context:
            row = {"role": ROLE_NAMES[t.speaker], "text": t.text}
            if t.strategy:
                row["strategy"] = t.strategy
            ctx.append(row)
        return {
            "id": self.id,
            "scene": self.scene,
            "description": self.description,
            "context": ctx,
            "gold_response": self.gold_response,
            "strategy_gold": self.strategy_gold,
            **({"meta": self.meta} if self.meta else {}),
        }


def _context(d: Dialogue, start: int, end: int, labelled: bool) -> tuple[Utterance, ...]:
    return tuple(
        Utterance(
            t.speaker,
            t.text,
            t.strategy if labelled and t.speaker == "supporter" else None,
        )
        for t in d.turns[start:end]
    )


def _targets(d: Dialogue) -> Iterator[int]:
    """Supporter turns that are evaluation targets: not context-only, with a seeker turn before."""
    seen_seeker = False
    for i, t in enumerate(d.turns):
        if t.speaker == "seeker":
            seen_seeker = True
        elif seen_seeker and not t.context_only and t.text.strip():
            yield i


def turn_items(dialogues: Iterable[Dialogue], *, label_context: bool = False) -> list[TestItem]:
    """One item per target supporter turn, with the whole dialogue before it as context."""
    items = []
    for d in dialogues:
        for i in _targets(d):
            t = d.turns[i]
            items.append(
                TestItem(
                    id=f"{d.seed_id}:t{i}",
                    scene=d.scene,
                    description=d.situation,
                    context=_context(d, 0, i, label_context),
                    gold_response=t.text,
                    strategy_gold=t.strategy,
                    meta={"seed_id": d.seed_id, "turn": i},
                )
            )
    return items


def _rng(seed: int, seed_id: str, turn: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{seed_id}\x1f{turn}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def kang_items(
    dialogues: Iterable[Dialogue],
    *,
    min_window: int = KANG_MIN_WINDOW,
    max_window: int = KANG_MAX_WINDOW,
    per_dialogue: int = 0,
    seed: int = 0,
) -> list[TestItem]:
    """Kang-style items: target turns with at least `min_window` utterances before them; the
    context is the last L utterances (L uniform in [min_window, max_window], drawn per item from
    a hash of (seed, dialogue, turn) so the set does not change when dialogues are added), with
    earlier supporter turns labelled. `per_dialogue` > 0 keeps that many targets per dialogue."""
    if not 1 <= min_window <= max_window:
        raise DataError(f"window: need 1 <= min ({min_window}) <= max ({max_window})")
    items = []
    for d in dialogues:
        targets = [i for i in _targets(d) if d.turns[i].strategy and i >= min_window]
        if per_dialogue > 0 and len(targets) > per_dialogue:
            pick = _rng(seed, d.seed_id, -1)
            targets = sorted(pick.sample(targets, per_dialogue))
        for i in targets:
            length = _rng(seed, d.seed_id, i).randint(min_window, max_window)
            start = max(0, i - length)
            items.append(
                TestItem(
                    id=f"{d.seed_id}:t{i}:w{i - start}",
                    scene=d.scene,
                    description=d.situation,
                    context=_context(d, start, i, True),
                    gold_response=d.turns[i].text,
                    strategy_gold=d.turns[i].strategy,
                    meta={"seed_id": d.seed_id, "turn": i, "window": i - start},
                )
            )
    return items


def write_items(items: Iterable[TestItem], path: str | Path) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with atomic_open(p) as fh:
        for it in items:
            fh.write(json.dumps(it.to_record(), ensure_ascii=False) + "\n")
            n += 1
    return n


def _speaker(value: object, where: str) -> Speaker:
    speaker = _SPEAKER_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if speaker is None:
        raise DataError(f"{where}: role {value!r} is neither User nor Supporter")
    return speaker


def read_items(path: str | Path, taxonomy: Taxonomy | None = None) -> list[TestItem]:
    """A test-set JSONL. Missing `id` becomes the line number; a missing or null strategy_gold
    makes a ROUGE-L-only item; a gold strategy the taxonomy does not know is an error."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: test set not found")
    items: list[TestItem] = []
    seen: set[str] = set()
    for lineno, where, rec in iter_objects(p):
        ctx_raw = rec.get("context")
        if not isinstance(ctx_raw, list) or not ctx_raw:
            raise DataError(f"{where}: context: a non-empty list of {{role, text}} is required")
        ctx = []
        for k, turn in enumerate(ctx_raw):
            if not isinstance(turn, dict) or not isinstance(turn.get("text"), str):
                raise DataError(f"{where}: context.{k}: needs 'role' and 'text'")
            strat = turn.get("strategy")
            if strat is not None and taxonomy is not None:
                strat = taxonomy.canonical(strat) or None
            ctx.append(Utterance(_speaker(turn.get("role"), f"{where}: context.{k}"), turn["text"], strat))
        gold = rec.get("gold_response")
        if not isinstance(gold, str):
            raise DataError(f"{where}: gold_response: a string is required")
        strategy = rec.get("strategy_gold")
        if isinstance(strategy, str) and strategy.strip():
            canon = taxonomy.canonical(strategy) if taxonomy is not None else strategy
            if canon is None:
                raise DataError(
                    f"{where}: strategy_gold '{strategy}' is not in taxonomy {taxonomy.name} "
                    "(pass --taxonomy, e.g. esconv8 for ESConv-based test sets)"
                )
            strategy = canon
        elif strategy is not None and not (isinstance(strategy, str)):
            raise DataError(f"{where}: strategy_gold: a string or null is required")
        else:
            strategy = None
        item_id = str(rec.get("id", lineno))
        if item_id in seen:
            raise DataError(f"{where}: duplicate id {item_id!r}")
        seen.add(item_id)
        items.append(
            TestItem(
                id=item_id,
                scene=str(rec.get("scene") or ""),
                description=str(rec.get("description") or rec.get("situation") or ""),
                context=tuple(ctx),
                gold_response=gold,
                strategy_gold=strategy,
                meta=rec.get("meta") if isinstance(rec.get("meta"), dict) else {},
            )
        )
    if not items:
        raise DataError(f"{p}: no test items")
    return items
