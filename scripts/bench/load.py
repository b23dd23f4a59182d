"""A small HTTP/1.1 keep-alive load generator for the HTTP benchmarks.

Why by hand: a Python HTTP client (httpx, http.client) costs more per request than
the routes it measures (httpx tops out near 480 requests/s against an empty ASGI app
here, where ``wrk`` gets 7,700), so the benchmarks would measure the client. This one
sends pre-encoded request bytes over one raw socket per client process and parses
only the status line and the framing of each answer; each client is its own process
so clients do not share a GIL with each other. ``wrk`` is not a Python dependency and
is not on a fresh machine.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import time
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

_CHUNK = 1 << 16


class _Answer:
    """Reads successive HTTP/1.1 answers from one keep-alive socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(_CHUNK)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self) -> tuple[int, bytes]:
        """One answer: (status, body)."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head, self.buf = self.buf[:end], self.buf[end + 4 :]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while size := int(self._line().split(b";")[0], 16):
                parts.append(self._take(size))
                self._take(2)
            self._line()  # the empty line after the last chunk (no trailers are sent)
            return status, b"".join(parts)
        return status, self._take(length or 0)


def _request(base: str, path: str, body: bytes, method: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(base).netloc
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _client(
    base: str,
    request: bytes,
    expect: int,
    start: Any,  # a multiprocessing Event
    seconds: float,
    out: Connection,
) -> None:
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port or 80))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answers = _Answer(sock)

    def once() -> None:
        sock.sendall(request)
        status, body = answers.read()
        if status != expect:
            raise SystemExit(f"answer {status}: {body[:2000]!r}")

    try:
        once()  # warm-up: connection, caches, per-thread contexts on the server
        out.send(("ready", 0))
        start.wait()
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            once()
            n += 1
        out.send(("done", n))
    except BaseException as exc:  # the parent reports it; a child has no one else to tell
        out.send(("error", str(exc)))
    finally:
        sock.close()


def http_rate(
    base: str,
    path: str,
    body: bytes,
    *,
    headers: dict[str, str],
    seconds: float,
    clients: int = 1,
    method: str = "POST",
    per_request: int = 1,
    expect: int = 200,
) -> float:
    """Answers (times ``per_request``) per second of ``clients`` keep-alive clients, each a
    process sending the same request for ``seconds``; exits on an answer other than
    ``expect``."""
    ctx = mp.get_context("fork")
    request = _request(base, path, body, method, headers)
    start = ctx.Event()
    pipes = []
    procs = []
    for _ in range(clients):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client, args=(base, request, expect, start, seconds, send))
        p.start()
        pipes.append(recv)
        procs.append(p)
    try:
        for r in pipes:
            kind, value = r.recv()
            if kind == "error":
                raise SystemExit(f"{method} {path}: {value}")
        began = time.perf_counter()
        start.set()
        total = 0
        for r in pipes:
            kind, value = r.recv()
            if kind == "error":
                raise SystemExit(f"{method} {path}: {value}")
            total += int(value)
        return total * per_request / (time.perf_counter() - began)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
