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

from escpro.roles.backends.sim import SimEngine
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
    engine = SimEngine(settings, end_marker=end_marker)
    faults = faults or FaultSettings()
    rng = random.Random(faults.seed)
    stats = ServerStats()
    slots = asyncio.Semaphore(engine.settings.capacity)

    async def completion(request: web.Request, api: str) -> web.StreamResponse:
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await _completion(request, api)
        finally:
            stats.in_flight -= 1

    async def _completion(request: web.Request, api: str) -> web.StreamResponse:
        if api_key and request.headers.get("Authorization") != f"Bearer {api_key}":
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            return web.json_response({"error": {"message": f"bad JSON body: {exc}"}}, status=400)
        role = request.headers.get(ROLE_HEADER, "supporter")
        stats.requests[role] += 1
        if any(k.startswith("guided_") for k in body):
            stats.guided_keys_seen += 1
        schema = _schema_of(body)
        stats.schema_requests += schema is not None
        fault = faults.draw(rng.random())
        if fault:
            stats.faults[fault] += 1
        if fault == "hang":
            await asyncio.sleep(faults.hang_s)
        if fault == "error":
            return web.json_response({"error": {"message": "sim: injected server error"}}, status=500)
        if fault == "unavailable":
            return web.json_response({"error": {"message": "sim: injected overload"}}, status=503,
                                     headers={"Retry-After": f"{faults.retry_after_s:g}"})
        if fault == "malformed":
            return web.Response(text="<html>upstream hiccup</html>", content_type="application/json")
        if api == "chat":
            messages = body.get("messages") or []
            prompt = None
        else:
            messages = []
            prompt = str(body.get("prompt", ""))
        ans = engine.answer(
            role,
            messages,
            schema,
            seed=body.get("seed"),
            temperature=float(body.get("temperature", 0.0) or 0.0),
            prompt=prompt,
        )
        if ans.delay_s > 0:
            async with slots:
                await asyncio.sleep(ans.delay_s)
        if ans.status != "ok":
            return web.json_response({"error": {"message": ans.error}}, status=503)
        text = ans.text
        if fault == "answer_truncated" and schema is not None:
            text = text[: max(1, len(text) // 2)]
        finish = "stop"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and ans.completion_tokens > max_tokens:
            text, finish = text[: max_tokens * 4], "length"
        choice = {"index": 0, "finish_reason": finish}
        if api == "chat":
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        payload = {
            "id": f"sim-{stats.requests.total()}",
            "object": "chat.completion" if api == "chat" else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", model_name),
            "choices": [choice],
            "usage": {
                "prompt_tokens": ans.prompt_tokens,
                "completion_tokens": ans.completion_tokens,
                "total_tokens": ans.prompt_tokens + ans.completion_tokens,
            },
        }
        data = orjson.dumps(payload)
        if fault == "truncated":
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            if request.transport is not None:
                request.transport.close()  # the client sees the body end short of Content-Length
            return resp
        return web.Response(body=data, content_type="application/json")

    async def chat(request: web.Request) -> web.StreamResponse:
        return await completion(request, "chat")

    async def completions(request: web.Request) -> web.StreamResponse:
        return await completion(request, "completions")

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": model_name, "object": "model"}]})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats_view(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": dict(stats.requests),
                "faults": dict(stats.faults),
                "schema_requests": stats.schema_requests,
                "guided_keys_seen": stats.guided_keys_seen,
                "max_in_flight": stats.max_in_flight,
            }
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATS_KEY] = stats
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats_view)
    return app


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
