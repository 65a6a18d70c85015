"""The supporter-model text format shared by extraction, training and evaluation.

A system prompt lists the taxonomy's strategies with definitions, and every supporter turn is
written "(<Strategy>) <reply>" (the authors' released data conversion, docs/paper.md section 4).
Keeping the writer and the parser in one module keeps train-time and eval-time text identical.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from escpro.dialogue import Utterance
from escpro.taxonomy import Taxonomy

SYSTEM_HEADER = (
    "You are an emotional supporter talking with a person who is going through a difficult "
    "time. Before each reply, choose the most suitable support strategy from the list below and "
    "write your reply as \"(<Strategy>) <reply>\".\n\nStrategies:"
)

_PREFIX = re.compile(r"^\s*[\(\[]\s*([^\)\]]{1,80}?)\s*[\)\]]\s*[:\-]?\s*", re.S)


def system_prompt(taxonomy: Taxonomy) -> str:
    lines = [SYSTEM_HEADER]
    for s in taxonomy.strategies:
        lines.append(f"- {s.name}: {s.definition}")
    return "\n".join(lines)


def format_supporter_turn(strategy: str, reply: str) -> str:
    return f"({strategy}) {reply.strip()}"


def parse_supporter_turn(text: str, taxonomy: Taxonomy) -> tuple[str | None, str, str | None]:
    """Split "(<Strategy>) <reply>" into (canonical strategy or None, reply, raw label or None).

    A missing prefix gives (None, text, None); a prefix naming no strategy of the taxonomy gives
    (None, reply, label) so callers can count it as invalid and still score the reply.
    """
    m = _PREFIX.match(text or "")
    if not m:
        return None, (text or "").strip(), None
    label = m.group(1).strip()
    return taxonomy.canonical(label), text[m.end():].strip(), label


def to_messages(taxonomy: Taxonomy, turns: Iterable[Utterance]) -> list[dict[str, str]]:
    """Chat messages from utterances after the taxonomy's system prompt: seeker -> user,
    supporter -> assistant written with its strategy prefix (a turn without a strategy is
    written as plain text)."""
    msgs: list[dict[str, str]] = [{"role": "system", "content": system_prompt(taxonomy)}]
    for u in turns:
        if u.speaker == "seeker":
            msgs.append({"role": "user", "content": u.text})
        else:
            msgs.append({"role": "assistant", "content": written(u)})
    return msgs


def written(u: Utterance) -> str:
    """A supporter turn as the model writes it: "(<Strategy>) <reply>" when its strategy is
    known, the plain text otherwise."""
    return format_supporter_turn(u.strategy, u.text) if u.strategy else u.text
