"""The simulator: a deterministic stand-in for an LLM, cheap enough for thousands of calls/s.

It answers each role plausibly (schema-valid JSON for schema requests, short free text for the
seeker and supporter; the seeker ends the dialogue with the marker more often as the dialogue
grows), with configurable latency, a capacity like a server's slots, and injected failures.
Every choice derives from a hash of the request content plus the seeds, so a run is repeatable and
a retry (which changes the sampling seed) can draw a different answer. It plans a build's cost
before any GPU hour is spent, drives benchmarks, and serves fault tests (`escpro serve --engine
sim` puts the same engine behind HTTP).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from escpro.roles.backends.common import approx_tokens, failed, finish
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.config import SimSettings

_SEEKER = (
    "I don't know, it's just been a lot lately.",
    "Yeah, that's kind of how I feel.",
    "I keep thinking about it every night.",
    "My family doesn't really get it.",
    "It's hard to talk about this with anyone.",
    "I guess I'm just tired of feeling this way.",
    "Maybe you're right, I hadn't thought of it like that.",
    "Work has been piling up and I can't keep up.",
    "I feel like I'm letting everyone down.",
    "Thanks, that actually helps a bit.",
    "I tried that before but it didn't stick.",
    "Sometimes I wonder if it's my fault.",
)
_SEEKER_END = (
    "Thank you so much, I feel a lot better now.",
    "Thanks for listening, I think I know what to do.",
    "I really appreciate this, talk soon.",
)
_SUPPORTER = (
    "That sounds really hard, and it makes sense you feel this way.",
    "I'm glad you shared this with me.",
    "It's okay to feel overwhelmed when so much is happening at once.",
    "Maybe we could think about one small step you could take this week.",
    "You've already shown a lot of strength by reaching out.",
    "Many people in your situation feel the same, you're not alone.",
    "What do you think would help you feel a little more supported?",
    "Could there be another way to look at what happened?",
    "Taking short breaks and getting enough sleep can make a real difference.",
    "Your feelings are valid, and there's no judgment here.",
)
_STRATEGY_LINE = re.compile(r"^- ([^:\n]{2,60}):", re.M)


@dataclass(frozen=True)
class SimAnswer:
    status: str  # "ok" | "error"
    text: str
    prompt_tokens: int
    completion_tokens: int
    delay_s: float
    error: str | None = None


def _uniforms(digest: bytes, n: int) -> list[float]:
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "little") / 4294967296.0 for i in range(n)]


def _skewed_choice(values: Sequence[Any], u: float) -> Any:
    """Favour the upper end of an ordered enum (answers look like a lenient judge's)."""
    n = len(values)
    return values[min(n - 1, int(n * (u**0.6)))]


def _value_for(schema: Mapping[str, Any], rng: random.Random) -> Any:
    if "enum" in schema:
        return _skewed_choice(list(schema["enum"]), rng.random())
    if "const" in schema:
        return schema["const"]
    typ = schema.get("type")
    if typ == "object":
        props = schema.get("properties", {})
        return {k: _value_for(sub, rng) for k, sub in props.items()}
    if typ == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 10)))
    if typ == "number":
        return round(rng.uniform(schema.get("minimum", 0.0), schema.get("maximum", 1.0)), 3)
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "array":
        return [_value_for(schema.get("items", {}), rng)]
    return "sim"


class SimEngine:
    """Pure answer computation (no I/O); shared by the in-process backend and the HTTP server."""

    def __init__(self, settings: SimSettings | None = None, *, end_marker: str = "[END]") -> None:
        self.settings = settings or SimSettings()
        self.end_marker = end_marker

    def answer(
        self,
        role: str,
        messages: Sequence[Mapping[str, str]],
        schema: Mapping[str, Any] | None,
        *,
        seed: int | None = None,
        temperature: float = 0.0,
        prompt: str | None = None,
    ) -> SimAnswer:
        s = self.settings
        body = prompt if prompt is not None else "\x1e".join(m.get("content", "") for m in messages)
        h = hashlib.blake2b(digest_size=32)
        h.update(f"{role}\x1f{s.seed}\x1f{seed}\x1f{temperature}\x1f".encode())
        h.update(body.encode("utf-8", "replace"))
        if schema is not None:
            h.update(str(schema.get("title", "")).encode())
        digest = h.digest()
        u_fail, u_bad, u_end, u_delay, u_len = _uniforms(digest, 5)
        delay = 0.0
        if s.latency_ms > 0 or s.jitter_ms > 0:
            delay = max(0.0, s.latency_ms + s.jitter_ms * (2 * u_delay - 1)) / 1000.0
        ptoks = approx_tokens(body)
        if u_fail < s.failure_rate:
            return SimAnswer("error", "", ptoks, 0, delay, "sim: injected failure")
        rng = random.Random(digest)
        if schema is not None:
            text = json.dumps(_value_for(schema, rng))
            if u_bad < s.invalid_rate:
                text = text[: max(1, int(len(text) * 0.6))]  # truncated JSON, like max_tokens
        elif role == "seeker":
            last = messages[-1].get("content", "") if messages else body
            turns = last.count("\nSupporter") + last.startswith("Supporter")
            p_end = min(1.0, s.end_probability + s.end_growth * turns)
            if u_end < p_end:
                text = f"{rng.choice(_SEEKER_END)} {self.end_marker}"
            else:
                text = " ".join(rng.sample(_SEEKER, 1 + int(u_len * 2)))
        else:  # one or two sentences: the prompts ask for supporter turns under ~25 words
            text = " ".join(rng.sample(_SUPPORTER, 1 + int(u_len * 2)))
            if role == "eval":
                names = _STRATEGY_LINE.findall(messages[0].get("content", "") if messages else "")
                if names:
                    text = f"({rng.choice(names)}) {text}"
        return SimAnswer("ok", text, ptoks, approx_tokens(text), delay)


class SimModel:
    """The simulator as an in-process RoleModel (backend `sim`)."""

    backend = "sim"
    needs_transcript = False

    def __init__(self, model: str = "sim", settings: SimSettings | None = None, *, end_marker: str = "[END]") -> None:
        self.model = model
        self.engine = SimEngine(settings, end_marker=end_marker)
        self._capacity = self.engine.settings.capacity
        self._sem: asyncio.Semaphore | None = None
        self.calls = 0

    async def _one(self, req: RoleRequest) -> RoleResult:
        t0 = time.perf_counter()
        ans = self.engine.answer(
            req.role,
            req.messages,
            req.schema,
            seed=req.sampling.seed,
            temperature=req.sampling.temperature,
        )
        if ans.delay_s > 0:
            if self._sem is None:
                self._sem = asyncio.Semaphore(self._capacity)
            async with self._sem:
                await asyncio.sleep(ans.delay_s)
        self.calls += 1
        ms = (time.perf_counter() - t0) * 1000.0
        if ans.status != "ok":
            return failed(req, "error", ans.error or "sim failure", backend=self.backend, model=self.model, latency_ms=ms)
        return finish(
            req,
            ans.text,
            backend=self.backend,
            model=self.model,
            prompt_tokens=ans.prompt_tokens,
            completion_tokens=ans.completion_tokens,
            latency_ms=ms,
        )

    async def generate(self, requests: Sequence[RoleRequest]) -> list[RoleResult]:
        if len(requests) == 1:
            return [await self._one(requests[0])]
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def aclose(self) -> None:
        return None
