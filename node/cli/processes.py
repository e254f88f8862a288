# SPDX-License-Identifier: Apache-2.0
"""Starting and watching node processes on this machine, and the ports they listen on (the
demo, benchmarks and chaos campaigns; the tests start nodes with these too)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.config import NodeConfig
from node.errors import ConfigError

START_TIMEOUT_S = 30.0


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS = 8000
"""How many ports below the kernel's ephemeral range are drawn for nodes to listen on."""


def listen_ports(count: int) -> list[int]:
    """``count`` distinct loopback TCP ports that were free a moment ago, for nodes started
    together on this machine. They are drawn below the range the kernel gives to outgoing
    connections, so a client socket opened before a node binds its port cannot take it.

    Raises:
        ConfigError: fewer than ``count`` free ports there.
    """
    low, high = listen_range()
    start = random.randrange(high - low)  # noqa: S311 (not a secret)
    ports: list[int] = []
    for n in range(high - low):
        port = low + (start + n) % (high - low)
        if port_is_free(port):
            ports.append(port)
        if len(ports) == count:
            return ports
    raise ConfigError(f"fewer than {count} free loopback ports below the ephemeral range")


def listen_range() -> tuple[int, int]:
    """The ports [low, high) to listen on: the ``LISTEN_PORTS`` just below the kernel's
    ephemeral range."""
    high = _ephemeral_low()
    return max(1024, high - LISTEN_PORTS), high


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def comity_command(*args: str) -> list[str]:
    """The argv that runs ``comity ARGS`` with this interpreter."""
    return [sys.executable, "-m", "node.cli.main", *args]


def spawn_node(
    config: NodeConfig, log: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``comity node serve`` for ``config`` as its own process, output to ``log``;
    ``env`` adds environment variables."""
    with log.open("ab") as out:
        return subprocess.Popen(
            comity_command("node", "serve", "--config", str(config.config_path)),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


def wait_until_serving(
    config: NodeConfig, process: subprocess.Popen[bytes], *, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Block until the node answers its health check on the local socket.

    Raises:
        ConfigError: the process exited, or did not become healthy in time.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"the node of {config.agency_id} exited with {process.returncode}")
        if is_serving(config.local_socket):
            return
        time.sleep(0.1)
    raise ConfigError(f"the node of {config.agency_id} did not start within {timeout_s}s")


def is_serving(local_socket: Path) -> bool:
    if not local_socket.exists():
        return False
    with grpc.insecure_channel(f"unix:{local_socket}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
