# SPDX-License-Identifier: Apache-2.0
"""Exchange benchmark: node-to-node preservation requests beside a bare grpc.aio echo.

The receiving node runs as its own process (`comity node serve`, SQLite, WAL, synchronous=FULL);
the sending node runs in this process and files requests through its exchange service, so
every request is validated, signed, sealed, stored, delivered over mutual TLS, verified,
opened, validated again, stored, acknowledged with a signed receipt, and the receipt verified
and stored. The baseline is a bare grpc.aio echo server, also its own process, sent a payload
of the same size at the same concurrency, in the same run.

A second mode, "direct", does all of that except the sender's own storage and outbox, so
the cost of durability shows as the gap between the two.

Usage: python -m ops.bench.exchange [--requests N] [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from node.cli.processes import listen_ports, spawn_node, wait_until_serving
from node.config import USER_ROLES, NodeConfig, init_node
from node.crypto.encoding import envelope_digest
from node.crypto.envelope import seal_envelope, verify_receipt
from node.crypto.keys import AgencyKeys
from node.federation.setup import federate
from node.forms.registry import get_form_type, schemas_dir
from node.forms.validate import validate_form
from node.ids import AgencyId, new_exchange_id, new_message_id
from node.model.envelope import EnvelopeHeader
from node.runtime import RunningNode, start_node
from node.storage import exchange_repo
from node.storage.engine import transaction
from node.timeutil import now_ms
from ops.bench.machine import describe_machine

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Result:
    mode: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _drive(
    mode: str, call: Callable[[], Awaitable[object]], *, concurrency: int, requests: int
) -> Result:
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    for _ in range(min(20, requests)):  # warm up connections, caches and the JIT-less paths
        await call()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(mode, concurrency, requests, time.perf_counter() - started, latencies)


def _make_nodes(workdir: Path) -> tuple[NodeConfig, NodeConfig]:
    sender_port, receiver_port = listen_ports(2)
    sender = init_node(
        directory=workdir / "sender",
        agency_id="bench-sender",
        country="EE",
        roles=["requesting"],
        listen=f"127.0.0.1:{sender_port}",
        admin_roles=USER_ROLES,
    )
    receiver = init_node(
        directory=workdir / "receiver",
        agency_id="bench-receiver",
        country="PT",
        roles=["central_authority"],
        listen=f"127.0.0.1:{receiver_port}",
        admin_roles=USER_ROLES,
    )
    federate([sender, receiver], roots_dir=workdir / "roots")
    return sender, receiver


async def _bench_comity(
    sender: RunningNode, receiver: str, form: bytes, levels: list[int], requests: int
) -> list[Result]:
    async def call() -> object:
        return await sender.exchange.file_request(
            request_type="preservation", recipient=AgencyId(receiver), form_json=form
        )

    return [await _drive("comity", call, concurrency=c, requests=requests) for c in levels]


async def _bench_echo(port: int, size: int, levels: list[int], requests: int) -> list[Result]:
    payload = b"\x5a" * size
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/bench.Echo/Echo"
        )

        async def call() -> object:
            return await echo(payload, timeout=10)

        return [await _drive("echo", call, concurrency=c, requests=requests) for c in levels]


async def _bench_direct(
    sender: RunningNode, receiver: str, form: bytes, levels: list[int], requests: int
) -> list[Result]:
    """Everything but the sender's durability: validate, sign, seal, deliver, verify receipt."""
    keys = AgencyKeys.load(sender.config.keys_dir)
    directory = sender.directory
    member = directory.find(receiver)
    assert member is not None
    form_type = get_form_type("preservation")

    async def call() -> object:
        canonical = validate_form(form_type, form)
        created = now_ms()
        header = EnvelopeHeader(
            message_id=new_message_id(),
            exchange_id=new_exchange_id(),
            sequence=1,
            sender=sender.config.agency_id,
            recipient=member.agency_id,
            created_at_ms=created,
            expires_at_ms=created + 3_600_000,
            directory_version=directory.version,
            payload_type=form_type.payload_type,
            sender_encryption_key_id=keys.encryption_key_id,
            recipient_encryption_key_id=member.encryption_key_id,
        )
        sealed = seal_envelope(
            header=header,
            payload=canonical,
            sender_keys=keys,
            recipient_encryption_key=member.encryption_key,
        )
        receipt = await sender.peers.deliver(member, sealed)
        verify_receipt(
            receipt,
            receiver_signing_keys=member.signing_keys,
            message_id=header.message_id,
            exchange_id=header.exchange_id,
            sender=header.sender,
            receiver=header.recipient,
            envelope_digest=envelope_digest(header, canonical),
        )
        return receipt

    return [await _drive("direct", call, concurrency=c, requests=requests) for c in levels]


def _envelope_size(sender: RunningNode) -> int:
    """Size of one stored, serialised envelope: what the echo baseline is sent."""
    with transaction(sender.engine) as session:
        newest = exchange_repo.list_exchanges(session, direction=None, limit=1)[0]
        return len(exchange_repo.messages_for_exchange(session, newest.id)[0].envelope)


def _start_echo_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "echo_server.py"), str(port)], stdout=subprocess.PIPE
    )


async def main(requests: int, levels: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="comity-bench-") as tmp:
        workdir = Path(tmp)
        sender_config, receiver_config = _make_nodes(workdir)
        receiver_proc = spawn_node(receiver_config, workdir / "receiver.log")
        (echo_port,) = listen_ports(1)
        echo_proc = _start_echo_server(echo_port)
        try:
            wait_until_serving(receiver_config, receiver_proc)
            assert echo_proc.stdout is not None
            echo_proc.stdout.readline()
            sender = await start_node(sender_config)
            try:
                form = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
                comity = await _bench_comity(
                    sender, receiver_config.agency_id, form, levels, requests
                )
                direct = await _bench_direct(
                    sender, receiver_config.agency_id, form, levels, requests
                )
                size = _envelope_size(sender)
            finally:
                await sender.stop()
            echo = await _bench_echo(echo_port, size, levels, requests)
        finally:
            receiver_proc.terminate()
            echo_proc.terminate()
            receiver_proc.wait(timeout=30)
            echo_proc.wait(timeout=30)
    _report([comity, direct], echo, size)


def _report(modes: list[list[Result]], echo: list[Result], size: int) -> None:
    print(f"{describe_machine()}, grpcio {grpc.__version__}")
    print(f"payload: {size} bytes per request (serialised envelope)")
    print("comity = through the outbox, durable at both ends (what `request file` does)")
    print("direct = the same without the sender's database: cost of durability = the gap")
    print(f"{'mode':>7} {'concurrency':>11} | {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} | ratio")
    for results in [*modes, echo]:
        for r, e in zip(results, echo, strict=True):
            print(
                f"{r.mode:>7} {r.concurrency:>11} | {r.rate:>7.0f} {r.percentile(0.5):>7.2f} "
                f"{r.percentile(0.99):>7.2f} | {r.rate / e.rate:>5.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per level")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    options = parser.parse_args()
    asyncio.run(main(options.requests, [int(c) for c in options.concurrency.split(",")]))
