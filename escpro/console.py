"""Text for a terminal: data from seeds and models is escaped before it is printed.

Seed dialogues and model answers are data, not trusted text: an ESC sequence in a seed would
otherwise recolour, move the cursor or retitle the user's terminal when `escpro tree` or `escpro
query` prints it. escape_controls() shows C0/C1 control characters (ESC, BEL, backspace, CR, DEL,
U+0080-U+009F), the bidirectional overrides and lone surrogates as visible escapes; JSON output
needs nothing (json.dumps escapes control characters itself).
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, bidi embedding/override/isolate marks, lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, keep: str = "\n\t") -> str:
    """`text` with every control character but those in `keep` written as a visible escape
    (ESC -> "\\e", CR -> "\\r", others "\\xNN" / "\\uNNNN"). Pure and cheap when there is
    nothing to escape."""
    if not _CONTROL.search(text):
        return text
    if not keep:
        return _CONTROL.sub(_escape, text)
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
