# SPDX-License-Identifier: Apache-2.0
"""``/livez`` and ``/readyz`` over plain HTTP/1.1, for supervisors and load balancers.

asyncio's own server and a handler that reads one request line and its headers: two fixed
answers need no web framework. Every answer is JSON and closes the connection. The port has no
TLS and no sign-in, so it says nothing beyond which checks fail and why (no URLs, no case
content); bind it to loopback or a management network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

from node.errors import ConfigError
from node.services.readiness import ReadinessResult

_LOG = logging.getLogger(__name__)
LINE_LIMIT = 8192
"""Longest request or header line read; longer ones are answered 400."""
MAX_HEADERS = 64
READ_TIMEOUT_S = 5.0
"""A client that has not sent its whole request by then is disconnected."""

_BAD_REQUEST: Mapping[str, object] = {"status": "bad request"}
Readiness = Callable[[], Awaitable[ReadinessResult]]


class _BadRequestError(Exception):
    """The request could not be read as HTTP/1.x."""


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a host and a port number.

    Raises:
        ConfigError: no port, or a port that is not a number from 0 to 65535.
    """
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"health.listen {listen!r} must be host:port")
    return host.strip("[]"), int(port)


class HealthHttpServer:
    """The node's health port: ``GET /livez`` (the process answers) and ``GET /readyz``."""

    def __init__(self, *, listen: str, readiness: Readiness) -> None:
        self._host, self._port = split_listen(listen)
        self._readiness = readiness
        self._server: asyncio.Server | None = None
        self._failing: frozenset[str] = frozenset()

    async def start(self) -> None:
        """Bind the port and start answering.

        Raises:
            ConfigError: the address cannot be bound.
        """
        try:
            self._server = await asyncio.start_server(
                self._serve, self._host, self._port, limit=LINE_LIMIT
            )
        except OSError as e:
            raise ConfigError(
                f"cannot listen for health probes on {self._host}:{self._port}: {e.strerror}"
            ) from e

    @property
    def port(self) -> int:
        """The bound port (the one the system chose for port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = "GET", ""
            try:
                method, path = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT_S)
            except (_BadRequestError, TimeoutError, ValueError):
                status, body = HTTPStatus.BAD_REQUEST, _BAD_REQUEST
            else:
                status, body = await self._answer(method, path)
            writer.write(_response(status, body, head=method == "HEAD"))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the prober went away; nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, method: str, path: str) -> tuple[HTTPStatus, Mapping[str, object]]:
        if path not in ("/livez", "/readyz"):
            return HTTPStatus.NOT_FOUND, {"status": "not found", "paths": ["/livez", "/readyz"]}
        if method not in ("GET", "HEAD"):
            return HTTPStatus.METHOD_NOT_ALLOWED, {"status": "method not allowed"}
        if path == "/livez":
            return HTTPStatus.OK, {"status": "alive"}
        result = await self._readiness()
        self._note(frozenset(result.failing))
        if result.ready:
            return HTTPStatus.OK, {"status": "ready"}
        return HTTPStatus.SERVICE_UNAVAILABLE, {
            "status": "not ready",
            "failing": dict(result.failing),
        }

    def _note(self, failing: frozenset[str]) -> None:
        """Log a change of readiness once, not every probe."""
        if failing == self._failing:
            return
        self._failing = failing
        if failing:
            _LOG.warning("not ready: %s", ", ".join(sorted(failing)))
        else:
            _LOG.info("ready")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and path of one request; its headers are read and ignored.

    Raises:
        _BadRequestError: not an HTTP/1.x request line, or too many headers.
        ValueError: a line longer than :data:`LINE_LIMIT`.
    """
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequestError
    for _ in range(MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return parts[0], parts[1].split("?", 1)[0]
    raise _BadRequestError


def _response(status: HTTPStatus, body: Mapping[str, object], *, head: bool) -> bytes:
    content = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    headers = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(content)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
    )
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers += "Allow: GET, HEAD\r\n"
    return (headers + "\r\n").encode("ascii") + (b"" if head else content)
