# SPDX-License-Identifier: Apache-2.0
"""A loopback TCP proxy that a test or a campaign can cut and heal (a network partition), or
make slow and lossy (each chunk delayed; a connection dropped now and then)."""

from __future__ import annotations

import asyncio
import contextlib
import random


class PartitionProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``; ``cut()`` drops every connection
    and refuses new ones until ``heal()``."""

    def __init__(
        self, *, target: int, delay_s: float = 0.0, drop_rate: float = 0.0, seed: int = 0
    ) -> None:
        self.target = target
        self.port = 0
        self.delay_s = delay_s
        """Added to every chunk forwarded, either way."""
        self.drop_rate = drop_rate
        """Chance that forwarding a chunk drops the whole connection instead."""
        self._rng = random.Random(seed)  # noqa: S311 (fault schedule, not secrets)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            # Connections accepted just before the close reach _accept on the next loop
            # turns; let them register so they are dropped with the rest.
            await asyncio.sleep(0.05)
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def heal(self) -> None:
        await self.start()  # the same port again

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)  # a cut must drop connections still being set up, too
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        if writer not in self._writers:  # cut while connecting upstream
            up_writer.close()
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer),
                self._pipe(up_reader, writer),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            # The event loop is closing with the connection still open: just drop it.
            writer.close()
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if self.drop_rate and self._rng.random() < self.drop_rate:
                    break  # a lost link: the connection goes down mid-call
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
