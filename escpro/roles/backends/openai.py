"""Backend `openai`: any OpenAI-compatible HTTP server (vLLM, llama.cpp server, TGI, a hosted API).

Every call goes through aiohttp (plain http:// and https://): a well-kept client whose CPU per call
keeps the build benchmark inside its targets (docs/performance.md; escpro's hand-written HTTP/1.1
client was removed in issue 15), where the openai SDK's default httpx transport costs ~30x more
client CPU per call under hundreds of calls in flight (docs/roles.md has the numbers and
scripts/bench_role_clients.py measures them). One pooled session per model instance; a semaphore
per endpoint caps requests in flight; each attempt has a timeout; 5xx/429, timeouts, connection
errors and malformed or truncated response bodies are retried a bounded number of times with
exponential backoff with jitter, honouring a server's Retry-After (backends/retry.py); any other
4xx fails at once. Schema requests are constrained with vLLM's
`structured_outputs: {"json": ...}` (vLLM >= 0.12) or OpenAI `response_format` json_schema; the
removed `guided_*` keys are never sent (vLLM would ignore them and not constrain the output).
Every request carries `X-Escpro-Role` so a server can tell the roles apart.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import random
import time
import weakref
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from escpro.errors import ConfigError
from escpro.roles.backends import retry
from escpro.roles.backends.common import failed, finish
from escpro.roles.base import RoleRequest, RoleResult
from escpro.roles.config import RoleBinding
from escpro.roles.prompts import render_transcript

ROLE_HEADER = "X-Escpro-Role"


class _Slots:
    """A semaphore whose waiters go lowest priority value first (FIFO among equals).

    Waiters queue by their request's priority (the build: minus the tree's remaining work, else
    its iteration): when more calls wait than the endpoint takes, the trees with the most work
    left go first, so the slowest tree (the one that decides when the build ends) waits least
    (the measured effect is in docs/performance.md)."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._seq = itertools.count()

    async def acquire(self, priority: float = 0) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            fut = heapq.heappop(self._waiters)[2]
            if not fut.done():  # skip waiters cancelled meanwhile
                fut.set_result(None)
                return
        self._free += 1


def _priority(req: RoleRequest) -> float:
    """Lower is served first: the request's typed priority (the build's estimate of the tree's
    remaining work, negated, else its iteration: the tree furthest behind first)."""
    return req.priority


# Per event loop (a semaphore binds to one loop), per endpoint: roles on one server share a limit.
_SEMAPHORES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Slots]] = (
    weakref.WeakKeyDictionary()
)


class _Retryable(Exception):
    def __init__(self, status: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s  # the server's Retry-After, in seconds


def _check_status(status: int, raw: bytes, retry_after: str | None) -> None:
    """5xx and 429 are retried (after the server's Retry-After if it sent one); other 4xx fail."""
    if status >= 500 or status == 429:
        raise _Retryable("error", f"HTTP {status}: {raw[:120].decode('utf-8', 'replace')}",
                         retry.parse_retry_after(retry_after))
    if status >= 400:
        raise _Fatal(f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")


class _Fatal(Exception):
    pass


def build_body(
    request: RoleRequest, model: str, *, api: str, structured: str, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for one request (pure; unit-tested for the structured-output keys)."""
    s = request.sampling
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": s.max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
    }
    if api == "chat":
        body["messages"] = [dict(m) for m in request.messages]
    else:
        body["prompt"] = request.prompt if request.prompt is not None else render_transcript(request.messages)
    if s.seed is not None:
        body["seed"] = s.seed
    if s.stop:
        body["stop"] = list(s.stop)
    if request.schema is not None:
        if structured == "vllm":
            body["structured_outputs"] = {"json": dict(request.schema)}
        elif structured == "response_format":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": str(request.schema.get("title", "answer")),
                    "schema": dict(request.schema),
                    "strict": True,
                },
            }
    if extra:
        body.update(extra)
    return body


def encode_body(
    request: RoleRequest, model: str, *, api: str, structured: str, extra: dict[str, Any] | None = None
) -> bytes:
    """build_body() as JSON bytes. orjson: ~8 us for a 5 KB body with its schema, where json.dumps
    took ~34 us even with the schema encoded once and spliced in (docs/performance.md)."""
    return orjson.dumps(build_body(request, model, api=api, structured=structured, extra=extra))


def parse_response(raw: bytes, api: str) -> tuple[str, bool, int, int]:
    """(text, hit max_tokens?, prompt tokens, completion tokens); raises _Retryable on a body
    that is not a well-formed completion (malformed or cut off by the server)."""
    try:
        data = orjson.loads(raw)
        choice = data["choices"][0]
        text = choice["message"]["content"] if api == "chat" else choice["text"]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise TypeError("content is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        snippet = raw[:80].decode("utf-8", "replace")
        raise _Retryable("error", f"malformed response body ({type(exc).__name__}): {snippet!r}") from None
    usage = data.get("usage") or {}
    return (
        text,
        choice.get("finish_reason") == "length",
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )


class OpenAIModel:
    backend = "openai"
    # generate() keeps its own time limit (call_budget_s): every attempt, connecting included,
    # has a timer, retries and backoffs are bounded, and a call waiting for a slot waits for
    # calls that are bounded the same way. So the role set adds no timer of its own per call
    # (asyncio.timeout per call was ~7% of a build's CPU: docs/performance.md).
    handles_timeout = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        structured: str = "vllm",
        api: str = "chat",
        concurrency: int = 64,
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api = api
        self.structured = structured
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.extra_body = dict(extra_body or {})
        self.url = f"{self.base_url}/{'chat/completions' if api == 'chat' else 'completions'}"
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._role_headers: dict[str, dict[str, str]] = {}
        self._jitter = random.Random()  # backoff timing only: answers do not depend on it

    @classmethod
    def from_binding(cls, b: RoleBinding, *, timeout_s: float = 120.0) -> OpenAIModel:
        if not b.base_url:
            raise ConfigError(
                f"roles: backend openai for model '{b.model}' needs base_url (or pass --endpoints FILE)"
            )
        key = None
        if b.api_key_env:
            key = os.environ.get(b.api_key_env)
            if key is None:
                raise ConfigError(f"roles: api_key_env: environment variable {b.api_key_env} is not set")
        return cls(
            b.base_url,
            b.model,
            api_key=key,
            structured=b.structured,
            api=b.api,
            concurrency=b.concurrency,
            timeout_s=b.request_timeout_s or timeout_s,
            retries=b.http_retries,
            backoff_s=b.backoff_s,
            extra_body=b.extra_body,
        )

    def _slots(self, loop: asyncio.AbstractEventLoop) -> _Slots:
        per_loop = _SEMAPHORES.setdefault(loop, {})
        sem = per_loop.get(self.base_url)
        if sem is None:
            sem = per_loop[self.base_url] = _Slots(self.concurrency)
        return sem

    def _ensure(self) -> tuple[aiohttp.ClientSession, _Slots]:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
            self._loop = loop
        return self._session, self._slots(loop)

    @property
    def needs_transcript(self) -> bool:
        return self.api == "completions"

    @property
    def call_budget_s(self) -> float:
        """The longest one generate() can take: every attempt timing out, plus the backoffs."""
        backoff = retry.worst_case_backoff_s(self.retries, self.backoff_s)
        return self.timeout_s * (1 + self.retries) + backoff + 1.0

    async def _post(self, session: aiohttp.ClientSession, data: bytes, role: str) -> bytes:
        headers = self._role_headers.get(role)
        if headers is None:  # one dict per role, built once: no per-call header merging
            headers = self._role_headers[role] = {**self.headers, ROLE_HEADER: role}
        try:
            async with session.post(self.url, data=data, headers=headers) as resp:
                raw = await resp.read()
                _check_status(resp.status, raw, resp.headers.get("Retry-After"))
                return raw
        except TimeoutError:
            raise _Retryable("timeout", f"no response within {self.timeout_s:g} s") from None
        except aiohttp.ClientPayloadError as exc:
            raise _Retryable("error", f"truncated response body: {exc}") from None
        except aiohttp.ClientError as exc:
            raise _Retryable("error", f"{type(exc).__name__}: {exc}") from None

    async def _one(self, req: RoleRequest) -> RoleResult:
        session, sem = self._ensure()
        prio = _priority(req)
        data = encode_body(req, self.model, api=self.api, structured=self.structured, extra=self.extra_body)
        t0 = time.perf_counter()
        last: _Retryable | None = None
        for attempt in range(1 + self.retries):
            if attempt:
                wait = retry.backoff_s(attempt, self.backoff_s, self._jitter, last and last.retry_after_s)
                await asyncio.sleep(wait)
            try:
                await sem.acquire(prio)
                try:
                    raw = await self._post(session, data, req.role)
                finally:
                    sem.release()
                text, truncated, ptok, ctok = parse_response(raw, self.api)
            except _Retryable as exc:
                last = exc
                continue
            except _Fatal as exc:
                return failed(req, "error", str(exc), backend=self.backend, model=self.model,
                              latency_ms=(time.perf_counter() - t0) * 1000, attempts=attempt + 1)
            return finish(req, text, backend=self.backend, model=self.model, prompt_tokens=ptok,
                          completion_tokens=ctok, latency_ms=(time.perf_counter() - t0) * 1000,
                          attempts=attempt + 1, truncated=truncated)
        assert last is not None
        return failed(req, last.status, f"{last} (after {1 + self.retries} attempts)", backend=self.backend,
                      model=self.model, latency_ms=(time.perf_counter() - t0) * 1000,
                      attempts=1 + self.retries)

    async def generate(self, requests: Sequence[RoleRequest]) -> list[RoleResult]:
        if len(requests) == 1:
            return [await self._one(requests[0])]
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
