"""The one async interface every backend implements, and the request/result values it trades.

Search code builds RoleRequests (escpro.roles.prompts) and awaits RoleModel.generate; it never
knows which backend answers. Failures are values (status != "ok"), never exceptions, so one bad
call cannot take a tree, let alone a build, down with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

ROLES: tuple[str, ...] = ("seeker", "supporter", "strategy", "reward")
CallStatus = Literal["ok", "invalid", "error", "timeout"]


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; part of a request's identity (answer reuse keys on them)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleRequest:
    """One model call.

    `messages` are chat messages ({"role", "content"}); backends for base models render them as
    a transcript. `schema` is a JSON schema the answer must satisfy (constrained at decoding time
    where the backend can, always validated), or None for free text. `priority` orders the calls
    that wait for a backend's slots (lower first: the build passes minus the tree's remaining
    work); not part of the key. `meta` rides along untouched (tree id, node id, iteration) so
    callers can log the call where it belongs; no backend reads it.
    """

    role: str
    messages: tuple[Mapping[str, str], ...]
    schema: Mapping[str, Any] | None = None
    sampling: Sampling = Sampling()
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # The same prompt rendered as a plain transcript for base models without a chat template
    # (escpro.roles.prompts); derived from the messages' template, so not part of the key.
    prompt: str | None = field(default=None, compare=False, hash=False)
    priority: float = field(default=0.0, compare=False, hash=False)

    def key(self, model: str = "") -> str:
        """Stable hash of (role, model, prompt, schema, sampling): the answer-reuse key.

        Computed for every call of a build (the reuse cache and llm_calls.prompt_hash), so it is
        one orjson encoding of the parts (unambiguous, ~2 us for a 5 KB prompt) and one sha256
        (JSON-encoding with the json module cost ~10% of a build's CPU, hashing the texts piece
        by piece ~5%: scripts/bench_build.py); memoised per request and model."""
        memo = self.__dict__.get("_key_memo")
        if memo is not None and memo[0] == model:
            return memo[1]
        s = self.sampling
        payload = orjson.dumps(
            (self.role, model, _schema_text(self.schema),
             (s.temperature, s.top_p, s.max_tokens, s.seed, s.stop), self.messages),
            option=orjson.OPT_SORT_KEYS, default=_plain,
        )
        out = hashlib.sha256(payload).hexdigest()[:32]
        object.__setattr__(self, "_key_memo", (model, out))
        return out


def _plain(obj: Any) -> Any:
    """orjson's fallback: read-only mappings (message dicts may be any Mapping) as dicts."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in a request key")


# id(schema) -> (schema, its canonical JSON): the few schemas of a run are built once and reused
# for every request, so their JSON is computed once (the entry keeps the object alive, so an id
# is never reused while cached).
_SCHEMA_TEXT: dict[int, tuple[Any, str]] = {}


def _schema_text(schema: Mapping[str, Any] | None) -> str:
    if schema is None:
        return "null"
    hit = _SCHEMA_TEXT.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    text = json.dumps(schema, sort_keys=True, ensure_ascii=False)
    if len(_SCHEMA_TEXT) < 256:
        _SCHEMA_TEXT[id(schema)] = (schema, text)
    return text


@dataclass
class RoleResult:
    """A call's outcome. `value` is the validated JSON object for schema requests, the raw text
    otherwise; it is None unless status == "ok"."""

    request: RoleRequest
    status: CallStatus
    text: str | None = None
    value: Any = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 1
    backend: str = ""
    model: str = ""
    cached: bool = False
    truncated_turns: int = 0  # oldest dialogue turns left out to fit the context (roles/context.py)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@runtime_checkable
class RoleModel(Protocol):
    """A backend serving one model. generate() takes any number of requests and returns one
    result per request, in order; backends batch or run them concurrently as they can."""

    backend: str
    model: str

    async def generate(self, requests: Sequence[RoleRequest]) -> list[RoleResult]: ...

    async def aclose(self) -> None: ...
