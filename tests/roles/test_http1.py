"""The lean HTTP/1.1 client (escpro.roles.backends.http1): response framings, keep-alive reuse,
servers that close connections, timeouts. A tiny asyncio server in each test plays a scripted
response; the sim server checks reuse with a real HTTP stack."""

import asyncio
import json

import pytest

from escpro.errors import ConfigError
from escpro.roles.backends import http1
from escpro.roles.backends.openai import OpenAIModel, build_body, encode_body
from escpro.roles.backends.sim_server import SimServerThread
from escpro.roles.base import RoleRequest, Sampling
from escpro.roles.schemas import reward_schema

REQ = RoleRequest("reward", ({"role": "user", "content": "rate"},), reward_schema(), Sampling(max_tokens=64))


async def _scripted(responses, *, close_after=None):
    """A server answering the k-th request on a connection with responses[k] (bytes, or None to
    close the connection at once); close_after=n closes each connection after n responses."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                seen.append(head + await reader.readexactly(length))
                resp = responses[min(len(seen) - 1, len(responses) - 1)]
                if resp is None:
                    break
                writer.write(resp)
                await writer.drain()
                n += 1
                if close_after is not None and n >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions", seen


def run(coro):
    return asyncio.run(coro)


async def _post(url, n=1, timeout=2.0):
    pool = http1.Http1Pool(url)
    head = pool.request_head({"Content-Type": "application/json"})
    try:
        out = [await pool.post(head, b"X-Escpro-Role: reward\r\n", b'{"a": %d}' % i, timeout) for i in range(n)]
    finally:
        pool.close()
    return out, pool


def test_content_length_chunked_and_close_delimited_bodies():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    plain = b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nbody"
    until_close = b"HTTP/1.0 200 OK\r\n\r\nall of it"

    async def go():
        out = {}
        for name, resp in (("chunked", chunked), ("plain", plain), ("close", until_close)):
            server, url, seen = await _scripted([resp], close_after=1 if name == "close" else None)
            async with server:
                (res,), _ = await _post(url)
                out[name] = res
                assert b"Content-Length: 8" in seen[0] and b"X-Escpro-Role: reward" in seen[0]
                assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        return out

    out = run(go())
    assert out == {"chunked": (200, b"hello, world"), "plain": (201, b"body"), "close": (200, b"all of it")}


def test_keep_alive_reuses_one_connection():
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def go():
        server, url, seen = await _scripted([resp])
        async with server:
            out, pool = await _post(url, n=5)
        return out, pool.opened, len(seen)

    out, opened, seen = run(go())
    assert out == [(200, b"ok")] * 5 and opened == 1 and seen == 5


def test_server_closing_after_each_response_and_stale_connections_are_survived():
    resp_close = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    resp_keep = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def go():
        server, url, _ = await _scripted([resp_close])
        async with server:
            out1, pool1 = await _post(url, n=3)  # Connection: close -> a new connection each time
        # the server says keep-alive but closes anyway: the stale connection is retried on a new one
        server, url, _ = await _scripted([resp_keep], close_after=1)
        async with server:
            pool = http1.Http1Pool(url)
            head = pool.request_head({})
            out2 = []
            for _ in range(3):
                out2.append(await pool.post(head, b"", b"{}", 2.0))
                await asyncio.sleep(0.05)  # let the close arrive before the next request
            pool.close()
        return out1, pool1.opened, out2, pool.opened

    out1, opened1, out2, opened2 = run(go())
    assert out1 == [(200, b"ok")] * 3 and opened1 == 3
    assert out2 == [(200, b"ok")] * 3 and opened2 == 3


def test_truncated_body_closed_before_response_and_garbage_are_errors():
    async def go(resp):
        server, url, _ = await _scripted([resp], close_after=1)
        async with server:
            with pytest.raises(http1.HttpError) as info:
                await _post(url)
        return info.value

    err = run(go(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"choi"))
    assert isinstance(err, http1.TruncatedBody) and "of 100" in str(err)
    err = run(go(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"))
    assert isinstance(err, http1.TruncatedBody)
    err = run(go(None))
    assert isinstance(err, http1.ConnectionClosed) and not err.received
    err = run(go(b"SSH-2.0-OpenSSH\r\n\r\n"))
    assert isinstance(err, http1.ProtocolError)


def test_timeout_and_refused_connection():
    async def hang():
        async def handle(reader, writer):
            try:
                await asyncio.sleep(10)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        async with server:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(TimeoutError):
                await _post(url, timeout=0.2)
            return loop.time() - t0

    assert run(hang()) < 1.0
    with SimServerThread() as srv:
        url = srv.base_url + "/chat/completions"
    with pytest.raises(OSError):
        run(_post(url))


def test_openai_backend_uses_lean_client_for_http_and_reuses_connections():
    with SimServerThread() as srv:
        m = OpenAIModel(srv.base_url, "sim", timeout_s=2.0, concurrency=4)
        assert m.lean

        async def go():
            try:
                reqs = [RoleRequest("reward", ({"role": "user", "content": f"rate {i}"},), reward_schema())
                        for i in range(20)]
                return await m.generate(reqs), m._pool.opened
            finally:
                await m.aclose()

        results, opened = run(go())
        assert all(r.ok for r in results) and opened <= 4
        assert srv.stats.requests["reward"] == 20
    assert not OpenAIModel("https://api.example.com/v1", "m").lean
    assert not OpenAIModel("http://localhost:1/v1", "m", http_client="aiohttp").lean
    with pytest.raises(ConfigError):
        OpenAIModel("https://api.example.com/v1", "m", http_client="lean")


@pytest.mark.parametrize("structured", ["vllm", "response_format", "none"])
def test_encoded_body_is_build_body(structured):
    plain = RoleRequest("seeker", ({"role": "user", "content": "x\u00e9\""},), sampling=Sampling(stop=("[END]",)))
    for req in (REQ, plain):
        for extra in (None, {"top_k": 5}, {"structured_outputs": {"regex": "a"}}):
            got = json.loads(encode_body(req, "m", api="chat", structured=structured, extra=extra))
            assert got == build_body(req, "m", api="chat", structured=structured, extra=extra)
