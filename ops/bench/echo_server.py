# SPDX-License-Identifier: Apache-2.0
"""The baseline: a bare grpc.aio server that echoes raw bytes (no TLS, no protobuf parsing)."""

from __future__ import annotations

import asyncio
import sys

import grpc

METHOD = "/bench.Echo/Echo"


async def _echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
