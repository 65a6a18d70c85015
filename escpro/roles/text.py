"""Cleaning role text before it is stored: speaker prefixes, quotes, strategy tags, end markers.

Models (base models continuing a transcript most of all) wrap their turn in noise: a leading
"Seeker:" or "(Affirmation)", surrounding quotes, or a run-on into the other speaker's next turn.
What is stored in the tree is the utterance alone; whether the seeker ended the dialogue is
returned separately (SeekerTurn.is_end).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

SPEAKER_WORDS = (
    "seeker",
    "supporter",
    "user",
    "assistant",
    "ai",
    "help seeker",
    "helper",
    "therapist",
    "client",
    "counselor",
    "counsellor",
)

_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`"}
_SPEAKER_ALT = "|".join(re.escape(w) for w in sorted(SPEAKER_WORDS, key=len, reverse=True))
# "Seeker:", "**Supporter**:", "[User]:", "Seeker (Affirmation):" at the start of the text.
_LEAD_SPEAKER = re.compile(
    rf"^\s*(?:\*\*|\[)?\s*(?:{_SPEAKER_ALT})\s*(?:\*\*|\])?\s*(?:\([^)]{{0,60}}\))?\s*:\s*",
    re.I,
)
# A later line that starts another speaker's turn: everything from there on is dropped.
_NEXT_TURN = re.compile(rf"\n\s*(?:\*\*|\[)?\s*(?:{_SPEAKER_ALT})\s*(?:\*\*|\])?\s*(?:\([^)]{{0,60}}\))?\s*:", re.I)
# A leading strategy tag "(Affirmation)" or "[Emotional Validation]" (supporter turns).
_LEAD_TAG = re.compile(r"^\s*[\(\[]\s*([A-Za-z][A-Za-z \-&/']{1,60})[\)\]]\s*[:\-]?\s*")


@lru_cache(maxsize=64)
def _marker_pattern(marker: str) -> re.Pattern[str]:
    """The marker, case-insensitive, tolerant of inner spaces and of <> / [] / {} brackets."""
    core = marker.strip().strip("[]<>{}()|").strip()
    if not core:
        return re.compile(re.escape(marker))
    words = r"[\s_\-]*".join(re.escape(w) for w in re.split(r"[\s_\-]+", core))
    return re.compile(rf"(?:[\[<{{(]\s*\|?\s*{words}\s*\|?\s*[\]>}})]|{re.escape(marker)})", re.I)


def has_end_marker(text: str, marker: str = "[END]") -> bool:
    return bool(_marker_pattern(marker).search(text or ""))


def strip_end_marker(text: str, marker: str = "[END]") -> str:
    """Remove the marker and anything after it (a model may ramble on after ending)."""
    m = _marker_pattern(marker).search(text or "")
    return text if m is None else text[: m.start()]


def strip_quotes(text: str) -> str:
    t = text.strip()
    while len(t) >= 2 and t[0] in _QUOTES and t[-1] == _QUOTES[t[0]] and t.count(t[0]) <= 2:
        t = t[1:-1].strip()
    return t


def _strip_tag(text: str, is_tag: Callable[[str], bool] | None) -> str:
    m = _LEAD_TAG.match(text)
    if m and (is_tag is None or is_tag(m.group(1))):
        return text[m.end():]
    return text


def clean_utterance(
    text: str | None,
    *,
    end_marker: str = "[END]",
    strip_tag: bool = False,
    is_tag: Callable[[str], bool] | None = None,
) -> str:
    """The utterance as it should be stored: first turn only, no speaker prefix, no quotes, no
    end marker, whitespace collapsed. `strip_tag` also drops a leading "(Strategy)" tag, only
    when `is_tag(label)` says it names a strategy (when given)."""
    t = (text or "").replace("\r\n", "\n")
    t = strip_end_marker(t, end_marker)
    for _ in range(3):  # "Supporter: (Affirmation) "..."" peels in a few passes
        before = t
        t = _LEAD_SPEAKER.sub("", t, count=1)
        if strip_tag:
            t = _strip_tag(t, is_tag)
        t = strip_quotes(t)
        if t == before:
            break
    m = _NEXT_TURN.search(t)
    if m:
        t = t[: m.start()]
    t = strip_quotes(t)
    return " ".join(t.split())


def first_turn(text: str | None) -> str:
    """The text up to the point where another speaker's turn starts."""
    t = _LEAD_SPEAKER.sub("", (text or "").lstrip(), count=1)
    m = _NEXT_TURN.search(t)
    return t[: m.start()] if m else t


def clean_seeker(text: str | None, end_marker: str = "[END]") -> tuple[str, bool]:
    """(cleaned text, ended?) for a seeker answer; only a marker in the seeker's own turn counts."""
    first = first_turn(text)
    return clean_utterance(first, end_marker=end_marker), has_end_marker(first, end_marker)


def clean_supporter(
    text: str | None, end_marker: str = "[END]", is_tag: Callable[[str], bool] | None = None
) -> str:
    """A supporter reply without prefix or "(Strategy)" tag (`is_tag`: e.g. taxonomy lookup)."""
    return clean_utterance(text, end_marker=end_marker, strip_tag=True, is_tag=is_tag)
