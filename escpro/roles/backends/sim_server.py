"""The simulator behind a real OpenAI-compatible HTTP server (`escpro serve --engine sim`).

Same engine as the in-process `sim` backend; the role comes from the `X-Escpro-Role` header, the
schema from `structured_outputs.json` (vLLM) or `response_format.json_schema.schema` (OpenAI).
Fault injection exercises clients end to end: HTTP 500, HTTP 503 with `Retry-After`, a malformed
body, a body cut off mid-JSON (the connection closes short of its Content-Length), a well-formed
completion whose JSON answer is cut short (like a model that ran out of tokens), and a hang (no
answer for `hang_s`). Faults are drawn from a seeded generator in arrival order, so a run is
repeatable; scripts/bench_faults.py builds against it at 10-50% faults. aiohttp.web keeps the
server cheap enough for thousands of calls/s on loopback.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from escpro.roles.backends.sim import SimAnswer, SimEngine
from escpro.roles.config import SimSettings

ROLE_HEADER = "X-Escpro-Role"


FAULT_KINDS = ("error", "unavailable", "malformed", "truncated", "answer_truncated", "hang")


@dataclass
class FaultSettings:
    error_rate: float = 0.0  # HTTP 500
    unavailable_rate: float = 0.0  # HTTP 503 with Retry-After: retry_after_s
    malformed_rate: float = 0.0  # 200 with a body that is not a completion
    truncated_rate: float = 0.0  # body cut off mid-JSON
    answer_truncated_rate: float = 0.0  # a complete body whose JSON answer is cut short
    hang_rate: float = 0.0  # no answer for hang_s
    hang_s: float = 30.0
    retry_after_s: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        rates = [getattr(self, f"{k}_rate") for k in FAULT_KINDS]
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must each be in [0, 1] and add up to at most 1")

    def draw(self, u: float) -> str | None:
        edge = 0.0
        for name in FAULT_KINDS:
            edge += getattr(self, f"{name}_rate")
            if u < edge:
                return name
        return None


@dataclass
class ServerStats:
    requests: Counter = field(default_factory=Counter)  # by role
    faults: Counter = field(default_factory=Counter)
    schema_requests: int = 0
    guided_keys_seen: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


STATS_KEY = web.AppKey("stats", ServerStats)


def _schema_of(body: dict) -> dict | None:
    so = body.get("structured_outputs")
    if isinstance(so, dict) and isinstance(so.get("json"), dict):
        return so["json"]
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        js = rf.get("json_schema") or {}
        if isinstance(js.get("schema"), dict):
            return js["schema"]
    return None


def make_app(
    settings: SimSettings | None = None,
    faults: FaultSettings | None = None,
    *,
    end_marker: str = "[END]",
    model_name: str = "sim",
    api_key: str | None = None,
) -> web.Application:
    """The server's routes over one `SimServer` (its counters under `app[STATS_KEY]`)."""
    server = SimServer(SimEngine(settings, end_marker=end_marker), faults or FaultSettings(),
                       model_name=model_name, api_key=api_key)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATS_KEY] = server.stats
    app.router.add_post("/v1/chat/completions", server.chat)
    app.router.add_post("/v1/completions", server.completions)
    app.router.add_get("/v1/models", server.models)
    app.router.add_get("/health", server.health)
    app.router.add_get("/stats", server.stats_view)
    return app


def _error(message: str | None, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status, headers=headers)


class SimServer:
    """The route handlers and the state they share: engine, fault generator, counters, slots.

    A completion runs as: check the key and parse the body, count the request, draw its fault,
    answer early if the fault replaces the answer, ask the engine, shape the answer (cut short by
    the fault or by `max_tokens`), send it (cut off mid-body for `truncated`). Nothing here
    validates beyond what a client error needs: the benchmarks measure the build through it."""

    def __init__(self, engine: SimEngine, faults: FaultSettings, *, model_name: str,
                 api_key: str | None) -> None:
        self.engine = engine
        self.faults = faults
        self.model_name = model_name
        self.api_key = api_key
        self.rng = random.Random(faults.seed)
        self.stats = ServerStats()
        self.slots = asyncio.Semaphore(engine.settings.capacity)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.completion(request, "chat")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self.completion(request, "completions")

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model_name, "object": "model"}]})

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats_view(self, _: web.Request) -> web.Response:
        stats = self.stats
        return web.json_response(
            {
                "requests": dict(stats.requests),
                "faults": dict(stats.faults),
                "schema_requests": stats.schema_requests,
                "guided_keys_seen": stats.guided_keys_seen,
                "max_in_flight": stats.max_in_flight,
            }
        )

    async def completion(self, request: web.Request, api: str) -> web.StreamResponse:
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._completion(request, api)
        finally:
            stats.in_flight -= 1

    async def _completion(self, request: web.Request, api: str) -> web.StreamResponse:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        role = request.headers.get(ROLE_HEADER, "supporter")
        schema = self._count(role, body)
        fault = self.faults.draw(self.rng.random())
        if fault:
            self.stats.faults[fault] += 1
            early = await self._fault_response(fault)
            if early is not None:
                return early
        ans = await self._answer(role, body, schema, api)
        if ans.status != "ok":
            return _error(ans.error, 503)
        text, finish = _shape(ans.text, ans.completion_tokens, body.get("max_tokens"),
                              cut=fault == "answer_truncated" and schema is not None)
        data = orjson.dumps(self._payload(api, body, ans, text, finish))
        if fault == "truncated":
            return await _send_truncated(request, data)
        return web.Response(body=data, content_type="application/json")

    async def _read(self, request: web.Request) -> dict | web.Response:
        """The request's JSON object, or the 401/400 answer that refuses it."""
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error("invalid api key", 401)
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            return _error(f"bad JSON body: {exc}", 400)
        return body

    def _count(self, role: str, body: dict) -> dict | None:
        """Count the request (by role, guided_* keys, schema); returns its schema."""
        stats = self.stats
        stats.requests[role] += 1
        if any(k.startswith("guided_") for k in body):
            stats.guided_keys_seen += 1
        schema = _schema_of(body)
        stats.schema_requests += schema is not None
        return schema

    async def _fault_response(self, fault: str) -> web.Response | None:
        """The answer a fault puts in place of the completion; None when the completion still
        follows (a hang answers after `hang_s`; the truncations shape the completion itself)."""
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_s)
        if fault == "error":
            return _error("sim: injected server error", 500)
        if fault == "unavailable":
            return _error("sim: injected overload", 503, {"Retry-After": f"{self.faults.retry_after_s:g}"})
        if fault == "malformed":
            return web.Response(text="<html>upstream hiccup</html>", content_type="application/json")
        return None

    async def _answer(self, role: str, body: dict, schema: dict | None, api: str) -> SimAnswer:
        """The engine's answer, after its simulated latency (within `capacity` concurrent slots)."""
        if api == "chat":
            messages = body.get("messages") or []
            prompt = None
        else:
            messages = []
            prompt = str(body.get("prompt", ""))
        ans = self.engine.answer(
            role,
            messages,
            schema,
            seed=body.get("seed"),
            temperature=float(body.get("temperature", 0.0) or 0.0),
            prompt=prompt,
        )
        if ans.delay_s > 0:
            async with self.slots:
                await asyncio.sleep(ans.delay_s)
        return ans

    def _payload(self, api: str, body: dict, ans: SimAnswer, text: str, finish: str) -> dict:
        """The OpenAI completion object (chat or text) around `text`."""
        choice: dict = {"index": 0, "finish_reason": finish}
        if api == "chat":
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {
            "id": f"sim-{self.stats.requests.total()}",
            "object": "chat.completion" if api == "chat" else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", self.model_name),
            "choices": [choice],
            "usage": {
                "prompt_tokens": ans.prompt_tokens,
                "completion_tokens": ans.completion_tokens,
                "total_tokens": ans.prompt_tokens + ans.completion_tokens,
            },
        }


def _shape(text: str, completion_tokens: int, max_tokens: object, *, cut: bool) -> tuple[str, str]:
    """(text, finish_reason): halved by an `answer_truncated` fault, cut at `max_tokens` (at ~4
    characters a token) with finish "length" when the answer is longer."""
    if cut:
        text = text[: max(1, len(text) // 2)]
    if isinstance(max_tokens, int) and completion_tokens > max_tokens:
        return text[: max_tokens * 4], "length"
    return text, "stop"


async def _send_truncated(request: web.Request, data: bytes) -> web.StreamResponse:
    """Half the body, then close: the client sees the body end short of Content-Length."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.content_length = len(data)
    await resp.prepare(request)
    await resp.write(data[: len(data) // 2])
    if request.transport is not None:
        request.transport.close()
    return resp


async def start_server(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start `app` in the running loop; port 0 picks a free port (returned)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    return runner, sock.getsockname()[1]


class SimServerThread:
    """The sim server on its own thread and loop (for synchronous callers and tests).

    Use as a context manager; `base_url` is ready on entry and the server is stopped on exit."""

    def __init__(self, settings: SimSettings | None = None, faults: FaultSettings | None = None, **kw) -> None:
        self.app = make_app(settings, faults, **kw)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def stats(self) -> ServerStats:
        return self.app[STATS_KEY]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner, self.port = self._loop.run_until_complete(start_server(self.app))
        except BaseException as exc:  # surfaced in __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
        for t in pending:
            t.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def __enter__(self) -> SimServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
