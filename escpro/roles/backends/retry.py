"""How long an HTTP backend waits before it sends a failed request again (pure functions).

Why jitter: hundreds of calls fail together when a server hiccups (a 503 burst, a restart); if
they all wait exactly 0.5, 1, 2 s they come back together and meet the same overload. Each wait
is drawn from [0.5, 1.5) x the exponential step ("equal jitter"), so retries spread out while the
mean schedule stays the documented one. Why Retry-After: a server that says when it can take
work again (vLLM behind a proxy, a hosted API under rate limits) knows better than a client's
guess; its value is honoured, bounded by `RETRY_AFTER_MAX_S` so a bad header cannot park a build.
Every wait is bounded, so one call's worst case (OpenAIModel.call_budget_s) is known.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

RETRY_AFTER_MAX_S = 30.0
JITTER = (0.5, 1.5)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when
    absent or unreadable. Never negative, never more than RETRY_AFTER_MAX_S."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return min(max(secs, 0.0), RETRY_AFTER_MAX_S)


def backoff_s(attempt: int, base_s: float, rng: random.Random, retry_after_s: float | None = None) -> float:
    """The wait before retry number `attempt` (1 = the first retry): base * 2^(attempt-1) with
    equal jitter, or the server's Retry-After when it asks for longer."""
    step = base_s * (2 ** (attempt - 1)) * rng.uniform(*JITTER)
    if retry_after_s is not None:
        return max(step, retry_after_s)
    return step


def worst_case_backoff_s(retries: int, base_s: float) -> float:
    """The longest all of a call's backoffs can take (for the call's time budget)."""
    return sum(max(base_s * (2**i) * JITTER[1], RETRY_AFTER_MAX_S) for i in range(retries))
