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
from node.federation.trusted import FederationDirectory
from node.indicators.campaigns import LinkRules
from node.indicators.psi_workers import PsiWorkers
from node.services.audit import AuditService
from node.services.campaigns import CampaignService
from node.services.delivery import DeliverySettings, DeliveryWorker, RetryPolicy
from node.services.directory_sync import DirectorySync
from node.services.disclosure import DisclosureService
from node.services.evidence import EvidenceService
from node.services.exchange import ExchangeService, ExchangeSettings
from node.services.groups import GroupService
from node.services.indicators import IndicatorService
from node.services.overlap import OverlapService
from node.services.overlap_reveal import RevealService
from node.services.set_offers import OfferSettings
from node.services.sightings import SightingService
from node.services.witness import WitnessService
from node.storage.database import Database
from node.storage.engine import create_engine, redact_url, upgrade
from node.telemetry import TRACER_NAME, make_tracer_provider
from node.timeutil import now_ms
from node.tls import read_private_key
from node.transport.audit_servicer import AuditServicer, WitnessServicer
from node.transport.directory_servicer import DirectoryServicer
from node.transport.evidence_servicer import EvidenceServicer
from node.transport.federation_servicer import FederationServicer
from node.transport.groups_servicer import GroupsClient, GroupsServicer
from node.transport.indicators_servicer import IndicatorsServicer
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
    directory: FederationDirectory
    directory_sync: DirectorySync
    evidence: EvidenceService
    disclosure: DisclosureService
    indicators: IndicatorService
    overlap: OverlapService
    psi: PsiWorkers
    groups: GroupService
    reveal: RevealService
    campaigns: CampaignService
    sightings: SightingService
    _uploading: asyncio.Task[None] | None = None
    _erasing: asyncio.Task[None] | None = None
    _witnessing: asyncio.Task[None] | None = None
    _syncing: asyncio.Task[None] | None = None
    _resending: asyncio.Task[None] | None = None
    _reporting: asyncio.Task[None] | None = None

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

    def start_directory_sync(self) -> None:
        """Ask the secretariat for newer directories every ``directory_sync_interval_s``."""
        self._syncing = asyncio.create_task(
            self.directory_sync.run(self.config.directory_sync_interval_s),
            name="comity-directory-sync",
        )

    def start_erasing(self) -> None:
        """Erase expired audit openings every ``audit.erase_interval_s`` in the background."""

        async def loop() -> None:
            while True:
                try:
                    erased = await self.disclosure.erase_expired()
                    if erased.leaves:
                        _LOG.info("erased the openings of %d audit leaves", erased.leaves)
                except ComityError as e:
                    _LOG.warning("erasing expired audit openings failed: %s", e.code)
                await asyncio.sleep(self.config.erase_interval_s)

        self._erasing = asyncio.create_task(loop(), name="comity-erasing")

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @property
    def federation_port(self) -> int:
        return self.servers.federation_port

    async def stop(self) -> None:
        """Graceful shutdown: stop accepting, finish in-flight calls, close the database."""
        _LOG.info("stopping (grace %.1fs)", self.config.grace_period_s)
        for task in (
            self._witnessing,
            self._syncing,
            self._uploading,
            self._erasing,
            self._resending,
            self._reporting,
        ):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.directory_sync.close()
        await self.servers.stop(self.config.grace_period_s)
        await self.delivery.stop(self.config.grace_period_s)
        await self.peers.close()
        # After the servers, so no overlap check still uses the worker processes.
        await asyncio.to_thread(self.psi.close)
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
    database = Database(create_engine(config.database_url))
    try:
        return await _start_on(database, config, keys, tracer_provider)
    except BaseException:
        # A node that cannot start (its port taken, say) leaves no connection open behind it.
        database.close()
        raise


async def _start_on(
    database: Database,
    config: NodeConfig,
    keys: AgencyKeys,
    tracer_provider: TracerProvider | None,
) -> RunningNode:
    await database.run(lambda: upgrade(database.engine))
    directory = await FederationDirectory.open(
        database=database, bootstrap=config.directory_file, clock=now_ms
    )
    _check_listed(config, directory, keys)
    provider = tracer_provider or make_tracer_provider(
        agency_id=config.agency_id,
        exporter=config.telemetry_exporter,
        otlp_endpoint=config.otlp_endpoint,
    )
    certificate, private_key = _read_tls(config)
    peers = PeerClient(
        certificate=certificate, private_key=private_key, timeout_s=config.delivery_timeout_s
    )
    sync = DirectorySync(directory=directory, source=peers, agency_id=config.agency_id)
    peers.on_directory_version = sync.announce
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
            directory_grace_ms=int(config.directory_grace_s * 1000),
        ),
        keys=keys,
        directory=directory,
        database=database,
        delivery=delivery,
        tracer=tracer,
        catch_up=sync,
    )
    directory.on_change(lambda _document: _reload_keys(config, exchange))
    evidence = EvidenceService(
        database=database,
        messages=exchange,
        transport=peers,
        directory=directory,
        keys=exchange.current_keys,
        clock=now_ms,
    )
    audit = AuditService(
        database=database, key=keys.checkpoint, agency_id=config.agency_id, clock=now_ms
    )
    disclosure = DisclosureService(
        database=database, audit=audit, agency_id=config.agency_id, clock=now_ms
    )
    psi = PsiWorkers()
    overlap = OverlapService(
        database=database,
        directory=directory,
        transport=peers,
        agency_id=config.agency_id,
        clock=now_ms,
        checks_per_day=config.overlap_checks_per_day,
        psi=psi,
    )
    reveal = RevealService(
        database=database,
        directory=directory,
        keys=exchange.current_keys,
        transport=peers,
        agency_id=config.agency_id,
        clock=now_ms,
        checks_per_day=config.overlap_checks_per_day,
        psi=psi,
    )
    indicators = IndicatorService(
        database=database,
        directory=directory,
        keys=exchange.current_keys,
        transport=peers,
        agency_id=config.agency_id,
        clock=now_ms,
        offers=_offer_settings(config),
    )
    sightings = SightingService(
        database=database,
        directory=directory,
        keys=exchange.current_keys,
        transport=peers,
        agency_id=config.agency_id,
        clock=now_ms,
        reports=_offer_settings(config),
    )
    campaigns = CampaignService(
        database=database,
        directory=directory,
        overlap=overlap,
        requests=exchange,
        agency_id=config.agency_id,
        clock=now_ms,
        rules=LinkRules(
            min_shared=config.campaign_min_shared,
            max_sets_per_value=config.campaign_max_sets_per_value,
        ),
    )
    groups = GroupService(
        database=database,
        directory=directory,
        keys=exchange.current_keys,
        transport=GroupsClient(peers=peers, timeout_s=config.delivery_timeout_s),
        agency_id=config.agency_id,
        clock=now_ms,
    )
    servers = build_servers(
        federation=FederationServicer(
            exchange=exchange, tracer=tracer, directory_version=lambda: directory.version
        ),
        audit=AuditServicer(audit=audit, disclosure=disclosure, directory=directory),
        witness=WitnessServicer(
            witness=WitnessService(
                database=database,
                key=keys.witness,
                agency_id=config.agency_id,
                directory=directory,
                clock=now_ms,
            )
        ),
        directory=DirectoryServicer(directory=directory),
        evidence=EvidenceServicer(evidence=evidence),
        groups=GroupsServicer(groups=groups),
        indicators=IndicatorsServicer(
            indicators=indicators, overlap=overlap, reveal=reveal, sightings=sightings
        ),
        local=LocalServicer(
            exchange=exchange,
            directory=directory,
            evidence=evidence,
            disclosure=disclosure,
            indicators=indicators,
            overlap=overlap,
            groups=groups,
            reveal=reveal,
            campaigns=campaigns,
            sightings=sightings,
        ),
        listen=config.listen,
        local_socket=config.local_socket,
        tls=TlsIdentity(
            certificate=certificate, private_key=private_key, trust_roots=directory.trust_roots
        ),
        max_concurrent_rpcs=config.max_concurrent_rpcs,
        share_port=config.share_port,
    )
    await servers.start()
    delivery.start()
    uploading = asyncio.create_task(
        evidence.run(config.poll_interval_s * 5), name="comity-evidence-upload"
    )
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
        directory_sync=sync,
        evidence=evidence,
        disclosure=disclosure,
        indicators=indicators,
        overlap=overlap,
        psi=psi,
        groups=groups,
        reveal=reveal,
        campaigns=campaigns,
        sightings=sightings,
        _uploading=uploading,
        _resending=asyncio.create_task(
            indicators.offers.run(config.indicator_resend_interval_s), name="comity-set-offers"
        ),
        _reporting=asyncio.create_task(
            sightings.reports.run(config.indicator_resend_interval_s),
            name="comity-sighting-reports",
        ),
    )


def _offer_settings(config: NodeConfig) -> OfferSettings:
    """Indicator set offers and sighting reports retry like deliveries, under claims of their
    own."""
    delivery = _delivery_settings(config)
    return OfferSettings(owner=delivery.owner, retry=delivery.retry, lease_ms=delivery.lease_ms)


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


def _check_listed(config: NodeConfig, directory: FederationDirectory, keys: AgencyKeys) -> None:
    where = f"directory version {directory.version}"
    member = directory.find(config.agency_id)
    if member is None:
        raise ConfigError(
            f"{where} does not list {config.agency_id} with active keys; ask the secretariat "
            "to add this node's member card"
        )
    if not set(member.signing_keys) & set(keys.signing_keys()):
        raise ConfigError(
            f"{where}: none of the signing keys in {config.keys_dir} is listed as active "
            f"for {config.agency_id}"
        )
    if not set(member.encryption_keys) & set(keys.encryption_keys()):
        raise ConfigError(
            f"{where}: none of the encryption keys in {config.keys_dir} is listed as active "
            f"for {config.agency_id}"
        )


def _reload_keys(config: NodeConfig, exchange: ExchangeService) -> None:
    """A new directory may list a signing key made by ``comity node rotate-key`` since start."""
    try:
        exchange.use_keys(AgencyKeys.load(config.keys_dir))
    except ConfigError as e:
        _LOG.warning("keeping the keys loaded earlier: %s", e.message)


def _read_tls(config: NodeConfig) -> tuple[bytes, bytes]:
    try:
        return config.tls_certificate.read_bytes(), read_private_key(config.tls_private_key)
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
    node.start_directory_sync()
    node.start_erasing()
    try:
        await stop.wait()
    finally:
        await node.stop()
