"""A lean keep-alive HTTP/1.1 client for plain `http://` endpoints (vLLM, llama.cpp server).

Why: at hundreds of calls per second aiohttp's client costs ~0.3 ms of CPU per call, the largest
item of a build's CPU (docs/performance.md); writing the request bytes to an `asyncio.Protocol`
and parsing the response in place costs about a third of that. It does one job: POST a body,
return (status, body). Responses with Content-Length, chunked bodies and bodies delimited by the
connection closing are read; a connection is reused when the server keeps it alive. Every failure
is an exception the caller maps to its retry path: `TimeoutError` (the attempt's deadline passed),
`TruncatedBody` (the connection closed inside a body), `ConnectionClosed` / `OSError` (refused,
reset, closed before a response), `ProtocolError` (not HTTP). TLS is not handled: https://
endpoints use aiohttp.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """Base of the transport errors (all retryable for the caller)."""


class ConnectionClosed(HttpError):
    def __init__(self, message: str, *, received: bool) -> None:
        super().__init__(message)
        self.received = received  # any response byte arrived before the close


class TruncatedBody(HttpError):
    pass


class ProtocolError(HttpError):
    pass


class Response(NamedTuple):
    status: int
    body: bytes
    retry_after: str | None  # the Retry-After header's value, if the server sent one


class _Conn(asyncio.Protocol):
    """One connection; parses one response at a time as bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future | None = None
        self.buf = bytearray()
        self._new_response()

    def _new_response(self) -> None:
        self.head_done = False
        self.status = 0
        self.keep = True
        self.length: int | None = None
        self.chunked = False
        self.until_close = False
        self.chunk_left = -1  # -1: expecting a size line; -2: the CRLF after a chunk; -3: trailers
        self.body = bytearray()
        self.received = False
        self.retry_after: str | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        w = self.waiter
        if w is None or w.done():  # bytes nobody asked for: the connection is unusable
            self.keep = False
            if self.transport is not None:
                self.transport.close()
            return
        self.received = True
        self.buf += data
        try:
            done = self._parse()
        except (ProtocolError, ValueError) as exc:
            self.waiter = None
            w.set_exception(exc if isinstance(exc, ProtocolError) else ProtocolError(f"bad response: {exc}"))
            self.keep = False
            if self.transport is not None:
                self.transport.close()
            return
        if done:
            self.waiter = None
            body = bytes(self.body) if (self.chunked or self.until_close) else self._take_body()
            w.set_result((self.status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        w, self.waiter = self.waiter, None
        if w is None or w.done():
            return
        if self.head_done and self.until_close:
            self.keep = False
            self.body += self.buf
            w.set_result((self.status, bytes(self.body)))
        elif self.head_done:
            got = len(self.body) + len(self.buf)
            want = f"of {self.length}" if self.length is not None else "(chunked)"
            w.set_exception(TruncatedBody(f"connection closed after {got} body bytes {want}"))
        else:
            why = f": {exc}" if exc else ""
            w.set_exception(ConnectionClosed(f"connection closed before a response{why}", received=self.received))

    # --- parsing ----------------------------------------------------------------------------
    def _take_body(self) -> bytes:
        n = self.length or 0
        body = bytes(self.buf[:n])
        del self.buf[:n]
        if self.buf:  # more than the response: never reuse a connection out of step
            self.keep = False
            self.buf.clear()
        return body

    def _parse(self) -> bool:
        buf = self.buf
        while not self.head_done:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("response head larger than 64 KiB")
                return False
            head = buf[:i].decode("latin-1")
            del buf[: i + 4]
            self._head(head)
        if self.chunked:
            return self._chunks()
        if self.until_close:
            self.body += buf
            buf.clear()
            return False
        return len(buf) >= (self.length or 0)

    def _head(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"not an HTTP response: {lines[0][:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200:  # 100 Continue and friends: the real response follows
            return
        conn = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                self.length = int(value)
                if self.length < 0:
                    raise ProtocolError("negative Content-Length")
            elif name == "transfer-encoding":
                self.chunked = "chunked" in value.lower()
            elif name == "connection":
                conn = value.strip().lower()
            elif name == "retry-after":
                self.retry_after = value.strip()
        self.status = status
        self.head_done = True
        if parts[0] == "HTTP/1.0":
            self.keep = conn == "keep-alive"
        else:
            self.keep = conn != "close"
        if status in (204, 304):
            self.chunked, self.length = False, 0
        elif self.chunked:
            self.length = None
        elif self.length is None:
            self.until_close, self.keep = True, False

    def _chunks(self) -> bool:
        buf = self.buf
        while True:
            if self.chunk_left == -1:
                i = buf.find(b"\r\n")
                if i < 0:
                    return False
                size = int(bytes(buf[:i]).split(b";", 1)[0].strip(), 16)
                del buf[: i + 2]
                self.chunk_left = size if size else -3
            elif self.chunk_left == -2:
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
                del buf[:2]
                self.chunk_left = -1
            elif self.chunk_left == -3:  # trailer section: lines until an empty one
                if buf[:2] == b"\r\n":
                    del buf[:2]
                    break
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    return False
                del buf[: i + 4]
                break
            else:
                take = min(self.chunk_left, len(buf))
                if not take:
                    return False
                self.body += buf[:take]
                del buf[:take]
                self.chunk_left -= take
                if not self.chunk_left:
                    self.chunk_left = -2
        if buf:
            self.keep = False
            buf.clear()
        return True


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class Http1Pool:
    """Keep-alive connections to one `http://host:port`; a request takes an idle one or opens one.

    The caller caps requests in flight (the openai backend's per-endpoint slots); the pool keeps at
    most `max_idle` idle connections. Not thread-safe: one pool per event loop."""

    def __init__(self, url: str, *, max_idle: int = 64) -> None:
        u = urlsplit(url)
        if u.scheme != "http":
            raise ValueError(f"the lean HTTP client speaks plain http:// only, not {u.scheme}://")
        self.host = u.hostname or "localhost"
        self.port = u.port or 80
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.netloc = u.netloc
        self.max_idle = max_idle
        self._idle: list[_Conn] = []
        self._all: set[_Conn] = set()
        self.opened = 0  # connections opened so far (tests check reuse)

    def request_head(self, headers: dict[str, str]) -> bytes:
        """The request line and fixed headers, without Content-Length (built once per model)."""
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")

    async def _open(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        self.opened += 1
        self._all.add(conn)
        return conn

    def _drop(self, conn: _Conn) -> None:
        self._all.discard(conn)
        conn.keep = False
        t = conn.transport
        if t is None or conn.closed:
            return
        try:
            t.abort()
        except RuntimeError:  # its event loop is closed (asyncio.run returned): close the socket itself
            sock = getattr(t, "_sock", None)
            if sock is not None:
                sock.close()
                t._sock = None  # type: ignore[attr-defined]  # closed: no 'unclosed transport' warning
            conn.closed = True

    async def post(self, head: bytes, extra_head: bytes, body: bytes, timeout: float) -> tuple[int, bytes]:
        """One POST within `timeout` seconds (connecting included). `head` from request_head(),
        `extra_head` more header lines ending in CRLF (may be empty)."""
        r = await self.request(head, extra_head, body, timeout)
        return r.status, r.body

    async def request(self, head: bytes, extra_head: bytes, body: bytes, timeout: float) -> Response:
        """post() with the response's Retry-After header (the caller's backoff honours it)."""
        data = b"".join((head, extra_head, b"Content-Length: %d\r\n\r\n" % len(body), body))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            reused = False
            conn = None
            while self._idle:
                c = self._idle.pop()
                if c.closed or c.transport is None or c.transport.is_closing():
                    self._all.discard(c)
                    continue
                conn, reused = c, True
                break
            if conn is None:  # rare (keep-alive): the asyncio.timeout machinery is fine here
                async with asyncio.timeout_at(deadline):
                    conn = await self._open()
            try:
                return await self._send(loop, conn, data, deadline)
            except ConnectionClosed as exc:
                # A kept-alive connection the server closed meanwhile: retry once on a new
                # one (no response byte was received, so the server did not answer it).
                if reused and not exc.received:
                    continue
                raise

    async def _send(
        self, loop: asyncio.AbstractEventLoop, conn: _Conn, data: bytes, deadline: float
    ) -> Response:
        fut = loop.create_future()
        conn._new_response()
        conn.waiter = fut
        assert conn.transport is not None
        # One timer on the response future: cheaper per call than asyncio.timeout's task cancel.
        timer = loop.call_at(deadline, _expire, fut)
        conn.transport.write(data)
        try:
            result = await fut
        except BaseException:
            conn.waiter = None
            self._drop(conn)
            raise
        finally:
            timer.cancel()
        if conn.keep and not conn.closed and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            self._drop(conn)
        return Response(result[0], result[1], conn.retry_after)

    def close(self) -> None:
        for conn in list(self._all):
            self._drop(conn)
        self._idle.clear()
