# SPDX-License-Identifier: Apache-2.0
"""Client streams as servicers read them: parsed, and ended when their sender goes quiet.

A streaming method's request messages are parsed by gRPC as they are read, so bytes that are
not the message the method takes surface inside the servicer's loop, as protobuf's own error;
and a peer that opens a stream and then sends nothing would hold the call (and, for an
indicator set in chunks, one of the few assembly slots) for as long as it liked. Every
servicer of a client stream reads it through :func:`received`, which turns the first into a
:class:`~node.errors.MalformedError` and the second into a :class:`StreamIdleError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from google.protobuf.message import DecodeError

from node.errors import ComityError, ErrorKind, MalformedError

M = TypeVar("M")

STREAM_IDLE_S = 30.0
"""How long a client stream may go without a message before the server ends it."""


class StreamIdleError(ComityError):
    """A client stream that sent no message for longer than the server waits."""

    kind = ErrorKind.UNAVAILABLE
    code = "stream_idle"


async def received(
    requests: AsyncIterator[M], *, what: str, idle_s: float = STREAM_IDLE_S
) -> AsyncIterator[M]:
    """The messages of a client stream, in order.

    Raises:
        MalformedError: a message is not a valid protobuf message of its type.
        StreamIdleError: no message (nor the stream's end) came within ``idle_s`` seconds.
    """
    iterator = aiter(requests)
    while True:
        try:
            message = await asyncio.wait_for(anext(iterator), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError as e:
            raise StreamIdleError(
                f"{what}: no message for {idle_s:g} seconds; the stream is ended"
            ) from e
        except DecodeError as e:
            raise MalformedError(f"{what}: a message is not a valid protobuf message") from e
        yield message
