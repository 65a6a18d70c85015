"""The `openai` backend's HTTP transport (aiohttp) against servers that misbehave at the HTTP level:
response framings, keep-alive reuse, servers that close connections, cut-off bodies, garbage,
timeouts. A tiny asyncio server in each test plays a scripted response; the sim server
(test_openai_http.py, tests/errors/test_faults.py) covers the application-level faults and
Retry-After."""

import asyncio
import json

import pytest

from escpro.roles.backends.openai import OpenAIModel, build_body, encode_body
from escpro.roles.backends.sim_server import SimServerThread
from escpro.roles.base import RoleRequest, Sampling
from escpro.roles.schemas import reward_schema

REQ = RoleRequest("reward", ({"role": "user", "content": "rate"},), reward_schema(), Sampling(max_tokens=64))
PLAIN = RoleRequest("seeker", ({"role": "user", "content": "hi"},))
ANSWER = b'{"choices": [{"message": {"content": "hello, world"}, "finish_reason": "stop"}]}'


def _resp(body: bytes = ANSWER, *, head: bytes = b"HTTP/1.1 200 OK\r\n") -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _scripted(responses, *, close_after=None):
    """A server answering the k-th request it sees with responses[k] (the last one repeats; None
    closes the connection at once); close_after=n closes each connection after n responses."""
    seen: list[bytes] = []
    conns = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        conns[0] += 1
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
    return server, f"http://127.0.0.1:{port}/v1", seen, conns


async def _generate(url, reqs, *, sequential=False, **kw):
    m = OpenAIModel(url, "m", **{"timeout_s": 2.0, "retries": 0, "backoff_s": 0.01, **kw})
    try:
        if not sequential:
            return await m.generate(reqs)
        out = []
        for r in reqs:
            out += await m.generate([r])
            await asyncio.sleep(0.05)  # let a server's close arrive before the next request
        return out
    finally:
        await m.aclose()


def test_content_length_chunked_and_close_delimited_bodies():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % 20 + ANSWER[:20] + b"\r\n" + b"%x\r\n" % (len(ANSWER) - 20) + ANSWER[20:]
               + b"\r\n0\r\n\r\n")
    until_close = b"HTTP/1.0 200 OK\r\n\r\n" + ANSWER

    async def go():
        for name, resp in (("length", _resp()), ("chunked", chunked), ("close", until_close)):
            server, url, seen, _ = await _scripted([resp], close_after=1 if name == "close" else None)
            async with server:
                (res,) = await _generate(url, [PLAIN])
            assert res.ok and res.text == "hello, world", (name, res.error)
            assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
            assert b"X-Escpro-Role: seeker" in seen[0]

    asyncio.run(go())


def test_keep_alive_reuses_connections_within_the_concurrency_limit():
    async def go():
        server, url, seen, conns = await _scripted([_resp()])
        async with server:
            out = await _generate(url, [PLAIN] * 20, concurrency=4)
        return out, len(seen), conns[0]

    out, seen, conns = asyncio.run(go())
    assert all(r.ok for r in out) and seen == 20 and conns <= 4


def test_servers_closing_connections_are_survived():
    async def go():
        closing = _resp(head=b"HTTP/1.1 200 OK\r\nConnection: close\r\n")
        server, url, _, conns1 = await _scripted([closing])
        async with server:
            out1 = await _generate(url, [PLAIN] * 3, sequential=True)
        # says keep-alive but closes anyway: the stale connection is not reused (or is retried)
        server, url, _, conns2 = await _scripted([_resp()], close_after=1)
        async with server:
            out2 = await _generate(url, [PLAIN] * 3, sequential=True, retries=1)
        return out1, conns1[0], out2, conns2[0]

    out1, conns1, out2, conns2 = asyncio.run(go())
    assert all(r.ok for r in out1) and conns1 == 3
    assert all(r.ok for r in out2) and conns2 == 3


@pytest.mark.parametrize("resp,needle", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"choi", "truncated response body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", "truncated response body"),
    (None, "Disconnected"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "Error"),
])
def test_cut_off_bodies_closed_connections_and_garbage_are_retried_then_recorded(resp, needle):
    async def go():
        server, url, seen, _ = await _scripted([resp], close_after=1)
        async with server:
            (res,) = await _generate(url, [REQ], retries=1)
        return res, len(seen)

    res, seen = asyncio.run(go())
    assert res.status == "error" and res.attempts == 2 and seen == 2
    assert needle in res.error and "after 2 attempts" in res.error


def test_timeout_and_refused_connection():
    async def hang():
        async def handle(reader, writer):
            try:
                await asyncio.sleep(10)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        async with server:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            (res,) = await _generate(url, [REQ], timeout_s=0.2)
            return res, loop.time() - t0

    res, took = asyncio.run(hang())
    assert res.status == "timeout" and "within 0.2 s" in res.error and took < 1.0
    with SimServerThread() as srv:
        url = srv.base_url
    (res,) = asyncio.run(_generate(url, [REQ]))
    assert res.status == "error" and "ClientConnectorError" in res.error


@pytest.mark.parametrize("structured", ["vllm", "response_format", "none"])
def test_encoded_body_is_build_body(structured):
    plain = RoleRequest("seeker", ({"role": "user", "content": "x\u00e9\""},), sampling=Sampling(stop=("[END]",)))
    for req in (REQ, plain):
        for extra in (None, {"top_k": 5}, {"structured_outputs": {"regex": "a"}}):
            got = json.loads(encode_body(req, "m", api="chat", structured=structured, extra=extra))
            assert got == build_body(req, "m", api="chat", structured=structured, extra=extra)
