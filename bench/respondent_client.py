"""The respondent benchmark's client: a few keep-alive HTTP/1.1 connections on one asyncio loop,
each taking the next respondent (one GET of the survey page, one POST of the answers) until the
slice is done. Requests and responses are written and parsed by hand (no redirects followed, no
cookies, no chunked bodies: the servers answer with a length), so the client spends little CPU
and the servers, not the client, set the pace on a small machine. It measures its own CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Respondent:
    code: str
    body: bytes  # the form POSTed, urlencoded


@dataclass
class Timings:
    seconds: float = 0.0  # wall time spent on this server's slices
    client_cpu: float = 0.0  # the client's CPU time during them
    get_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request and read its whole response: (status, body)."""
        assert self._reader is not None and self._writer is not None, "open() first"
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if method == "POST":
            head += "Content-Type: application/x-www-form-urlencoded\r\n"
            head += f"Content-Length: {len(body)}\r\n"
        self._writer.write(head.encode("ascii") + b"\r\n" + body)
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise RuntimeError(f"{method} {path}: chunked answer, the client reads lengths")
        if length is None:
            raise RuntimeError(f"{method} {path}: answer without Content-Length")
        return status, await self._reader.readexactly(length)


def _check(method: str, path: str, status: int, expected: int, body: bytes) -> None:
    if status != expected:
        text = body[:300].decode("utf-8", "replace")
        raise RuntimeError(f"{method} {path} answered {status}, expected {expected}: {text}")


async def answer_all(
    connections: list[Connection], respondents: list[Respondent], into: Timings
) -> None:
    """Every respondent once, spread over the connections; wall time, CPU and per-request
    milliseconds added to ``into``."""
    queue = iter(respondents)

    async def work(conn: Connection) -> None:
        for who in queue:
            path = f"/s/{who.code}"
            t0 = time.perf_counter()
            status, body = await conn.request("GET", path)
            t1 = time.perf_counter()
            _check("GET", path, status, 200, body)
            status, body = await conn.request("POST", path, who.body)
            t2 = time.perf_counter()
            _check("POST", path, status, 303, body)
            into.get_ms.append((t1 - t0) * 1000)
            into.post_ms.append((t2 - t1) * 1000)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(work(conn) for conn in connections))
    into.seconds += time.perf_counter() - wall0
    into.client_cpu += time.process_time() - cpu0


async def open_all(host: str, port: int, n: int) -> list[Connection]:
    connections = [Connection(host, port) for _ in range(n)]
    await asyncio.gather(*(c.open() for c in connections))
    return connections
