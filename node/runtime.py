# SPDX-License-Identifier: Apache-2.0
"""Assembling a node from its configuration, and running it until told to stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Engine

from node.config import NodeConfig
from node.crypto.keys import AgencyKeys
from node.errors import ComityError, ConfigError
from node.members import StaticDirectory
from node.services.audit import AuditService
from node.services.delivery import DeliverySettings, DeliveryWorker, RetryPolicy
from node.services.exchange import ExchangeService, ExchangeSettings
from node.services.witness import WitnessService
from node.storage.database import Database
from node.storage.engine import create_engine, redact_url, upgrade
from node.telemetry import TRACER_NAME, make_tracer_provider
from node.timeutil import now_ms
from node.transport.audit_servicer import AuditServicer, WitnessServicer
from node.transport.federation_servicer import FederationServicer
from node.transport.local_servicer import LocalServicer
from node.transport.peer_client import PeerClient
from node.transport.server import NodeServers, TlsIdentity, build_servers
from node.transport.witness_client import collect_cosignatures

_LOG = logging.getLogger(__name__)


@dataclass(kw_only=True)
class RunningNode:
    """A started node: its servers, its database and what must be closed on the way out."""

    config: NodeConfig
    servers: NodeServers
    exchange: ExchangeService
    delivery: DeliveryWorker
    database: Database
    peers: PeerClient
    tracer_provider: TracerProvider
    audit: AuditService
    directory: StaticDirectory
    _witnessing: asyncio.Task[None] | None = None

    async def collect_cosignatures(self) -> int:
        """Ask every other member's witness to cosign this node's newest checkpoint."""
        others = [m for m in self.directory.members() if m.agency_id != self.config.agency_id]
        return await collect_cosignatures(
            audit=self.audit,
            database=self.database,
            witnesses=[(m, self.peers.channel(m)) for m in others],
            clock=now_ms,
        )

    def start_witnessing(self) -> None:
        """Collect cosignatures every ``audit.cosign_interval_s`` in the background."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.config.cosign_interval_s)
                try:
                    await self.collect_cosignatures()
                except ComityError as e:
                    _LOG.warning("collecting cosignatures failed: %s", e.code)

        self._witnessing = asyncio.create_task(loop(), name="comity-witnessing")

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @property
    def federation_port(self) -> int:
        return self.servers.federation_port

    async def stop(self) -> None:
        """Graceful shutdown: stop accepting, finish in-flight calls, close the database."""
        _LOG.info("stopping (grace %.1fs)", self.config.grace_period_s)
        if self._witnessing is not None:
            self._witnessing.cancel()
            await asyncio.gather(self._witnessing, return_exceptions=True)
        await self.servers.stop(self.config.grace_period_s)
        await self.delivery.stop(self.config.grace_period_s)
        await self.peers.close()
        self.database.close()
        self.tracer_provider.shutdown()
        _LOG.info("stopped")


async def start_node(
    config: NodeConfig, *, tracer_provider: TracerProvider | None = None
) -> RunningNode:
    """Load keys, membership and database, migrate, and start both servers.

    ``tracer_provider`` replaces the one the configuration names (tests capture spans).

    Raises:
        ConfigError: a key, certificate, membership or database setting is unusable.
        StorageUnavailableError: the database cannot be reached.
    """
    keys = AgencyKeys.load(config.keys_dir)
    directory = StaticDirectory.from_file(config.members_file)
    _check_listed(config, directory, keys)
    database = Database(create_engine(config.database_url))
    await database.run(lambda: upgrade(database.engine))
    provider = tracer_provider or make_tracer_provider(
        agency_id=config.agency_id,
        exporter=config.telemetry_exporter,
        otlp_endpoint=config.otlp_endpoint,
    )
    certificate, private_key = _read_tls(config)
    peers = PeerClient(
        certificate=certificate, private_key=private_key, timeout_s=config.delivery_timeout_s
    )
    tracer = provider.get_tracer(TRACER_NAME)
    delivery = DeliveryWorker(
        settings=_delivery_settings(config),
        database=database,
        directory=directory,
        transport=peers,
        agency_id=config.agency_id,
        clock=now_ms,
        tracer=tracer,
    )
    exchange = ExchangeService(
        settings=ExchangeSettings(
            agency_id=config.agency_id,
            message_lifetime_ms=config.message_lifetime_s * 1000,
            file_wait_s=config.file_wait_s,
            outbox_capacity=config.outbox_capacity,
            alert_after_ms=int(config.alert_after_s * 1000),
        ),
        keys=keys,
        directory=directory,
        database=database,
        delivery=delivery,
        tracer=tracer,
    )
    audit = AuditService(
        database=database, key=keys.checkpoint, agency_id=config.agency_id, clock=now_ms
    )
    servers = build_servers(
        federation=FederationServicer(exchange=exchange, tracer=tracer),
        audit=AuditServicer(audit=audit),
        witness=WitnessServicer(
            witness=WitnessService(
                database=database,
                key=keys.witness,
                agency_id=config.agency_id,
                directory=directory,
                clock=now_ms,
            )
        ),
        local=LocalServicer(exchange=exchange),
        listen=config.listen,
        local_socket=config.local_socket,
        tls=TlsIdentity(
            certificate=certificate, private_key=private_key, trust_roots=directory.trust_roots()
        ),
        max_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    await servers.start()
    delivery.start()
    _LOG.info(
        "node %s serving federation on port %d, local socket %s, database %s",
        config.agency_id,
        servers.federation_port,
        config.local_socket,
        redact_url(config.database_url),
    )
    return RunningNode(
        config=config,
        servers=servers,
        exchange=exchange,
        delivery=delivery,
        database=database,
        peers=peers,
        tracer_provider=provider,
        audit=audit,
        directory=directory,
    )


def _delivery_settings(config: NodeConfig) -> DeliverySettings:
    return DeliverySettings(
        # Unique per process: replicas sharing a database tell their claims apart.
        owner=f"{config.agency_id}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}",
        retry=RetryPolicy(base_s=config.retry_base_s, cap_s=config.retry_cap_s),
        # A claim outlives any single attempt (the call deadline) with room to record it.
        lease_ms=int(config.delivery_timeout_s * 2000) + 5000,
        max_in_flight=config.max_in_flight,
        poll_interval_s=config.poll_interval_s,
    )


def _check_listed(config: NodeConfig, directory: StaticDirectory, keys: AgencyKeys) -> None:
    member = directory.find(config.agency_id)
    if member is None:
        raise ConfigError(
            f"{config.members_file}: this node's agency {config.agency_id} is not listed"
        )
    if keys.signing_key_id not in member.signing_keys:
        raise ConfigError(
            f"{config.members_file}: the signing key in {config.keys_dir} is not "
            f"the one listed for {config.agency_id}"
        )
    if keys.encryption_key_id != member.encryption_key_id:
        raise ConfigError(
            f"{config.members_file}: the encryption key in {config.keys_dir} is "
            f"not the one listed for {config.agency_id}"
        )


def _read_tls(config: NodeConfig) -> tuple[bytes, bytes]:
    try:
        return config.tls_certificate.read_bytes(), config.tls_private_key.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read TLS material: {e.strerror}: {e.filename}") from e


async def serve_until_signalled(config: NodeConfig) -> None:
    """Run a node until SIGTERM or SIGINT, then shut it down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    node = await start_node(config)
    node.start_witnessing()
    try:
        await stop.wait()
    finally:
        await node.stop()
