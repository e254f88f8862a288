# SPDX-License-Identifier: Apache-2.0
"""Assembling a node from its configuration, and running it until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from sqlalchemy import Engine

from node.config import NodeConfig
from node.crypto.keys import AgencyKeys
from node.errors import ComityError, ConfigError
from node.federation.trusted import FederationDirectory
from node.indicators.campaigns import LinkRules
from node.indicators.psi_workers import PsiWorkers
from node.replica import Incarnation, start_incarnation
from node.services.audit import AuditService
from node.services.campaigns import CampaignService
from node.services.delivery import DeliverySettings, DeliveryWorker
from node.services.directory_sync import DirectorySync
from node.services.disclosure import DisclosureService
from node.services.evidence import EvidenceService
from node.services.exchange import ExchangeService, ExchangeSettings
from node.services.groups import GroupService
from node.services.indicators import IndicatorService
from node.services.outbox import RetryPolicy, release_earlier_claims
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
    incarnation: Incarnation
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
        self.incarnation.close()
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
    incarnation = start_incarnation(config)
    database = Database(create_engine(config.database_url))
    try:
        return await _start_on(database, config, keys, tracer_provider, incarnation)
    except BaseException:
        # A node that cannot start (its port taken, say) leaves no connection open behind it.
        database.close()
        incarnation.close()
        raise


async def _start_on(
    database: Database,
    config: NodeConfig,
    keys: AgencyKeys,
    tracer_provider: TracerProvider | None,
    incarnation: Incarnation,
) -> RunningNode:
    base = await _foundation(database, config, keys, tracer_provider, incarnation)
    services = _services(base)
    servers = _servers(base, services)
    await servers.start()
    services.delivery.start()
    _LOG.info(
        "node %s serving federation on port %d, local socket %s, database %s",
        config.agency_id,
        servers.federation_port,
        config.local_socket,
        redact_url(config.database_url),
    )
    return _running(base, services, servers)


@dataclass(frozen=True, kw_only=True)
class _Foundation:
    """What every service of a node stands on: its configuration, keys, database, trusted
    directory, peer connections and telemetry."""

    config: NodeConfig
    keys: AgencyKeys
    database: Database
    directory: FederationDirectory
    sync: DirectorySync
    peers: PeerClient
    tls: TlsIdentity
    provider: TracerProvider
    tracer: Tracer
    incarnation: Incarnation


@dataclass(frozen=True, kw_only=True)
class _Services:
    """The services of one node, wired to each other; transport serves them."""

    delivery: DeliveryWorker
    exchange: ExchangeService
    evidence: EvidenceService
    audit: AuditService
    disclosure: DisclosureService
    psi: PsiWorkers
    overlap: OverlapService
    reveal: RevealService
    indicators: IndicatorService
    sightings: SightingService
    campaigns: CampaignService
    groups: GroupService
    witness: WitnessService


async def _foundation(
    database: Database,
    config: NodeConfig,
    keys: AgencyKeys,
    tracer_provider: TracerProvider | None,
    incarnation: Incarnation,
) -> _Foundation:
    """Migrate the database, release the claims of this replica's earlier (dead) runs, open
    the trusted directory and connect to peers."""
    await database.run(lambda: upgrade(database.engine))
    released = await release_earlier_claims(
        database, replica=incarnation.replica, owner=incarnation.owner
    )
    if released:
        _LOG.info("released %d claims left by an earlier run of this node", released)
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
    return _Foundation(
        config=config,
        keys=keys,
        database=database,
        directory=directory,
        sync=sync,
        peers=peers,
        tls=TlsIdentity(
            certificate=certificate, private_key=private_key, trust_roots=directory.trust_roots
        ),
        provider=provider,
        tracer=provider.get_tracer(TRACER_NAME),
        incarnation=incarnation,
    )


def _services(base: _Foundation) -> _Services:
    delivery = _delivery_worker(base)
    exchange = _exchange_service(base, delivery)
    audit = AuditService(
        database=base.database,
        key=base.keys.checkpoint,
        agency_id=base.config.agency_id,
        clock=now_ms,
    )
    overlap, reveal, psi = _overlap_services(base, exchange.current_keys)
    return _Services(
        delivery=delivery,
        exchange=exchange,
        evidence=EvidenceService(
            database=base.database,
            messages=exchange,
            transport=base.peers,
            directory=base.directory,
            keys=exchange.current_keys,
            clock=now_ms,
            # Evidence streams in beside the node's own files, not on a RAM-backed /tmp.
            spool_dir=base.config.config_path.parent,
        ),
        audit=audit,
        disclosure=DisclosureService(
            database=base.database, audit=audit, agency_id=base.config.agency_id, clock=now_ms
        ),
        psi=psi,
        overlap=overlap,
        reveal=reveal,
        indicators=_indicator_service(base, exchange.current_keys),
        sightings=_sighting_service(base, exchange.current_keys),
        campaigns=_campaign_service(base, overlap, exchange),
        groups=GroupService(
            database=base.database,
            directory=base.directory,
            keys=exchange.current_keys,
            transport=GroupsClient(peers=base.peers, timeout_s=base.config.delivery_timeout_s),
            agency_id=base.config.agency_id,
            clock=now_ms,
        ),
        witness=WitnessService(
            database=base.database,
            key=base.keys.witness,
            agency_id=base.config.agency_id,
            directory=base.directory,
            clock=now_ms,
        ),
    )


def _delivery_worker(base: _Foundation) -> DeliveryWorker:
    return DeliveryWorker(
        settings=_delivery_settings(base.config, base.incarnation.owner),
        database=base.database,
        directory=base.directory,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        tracer=base.tracer,
    )


def _exchange_service(base: _Foundation, delivery: DeliveryWorker) -> ExchangeService:
    config = base.config
    exchange = ExchangeService(
        settings=ExchangeSettings(
            agency_id=config.agency_id,
            message_lifetime_ms=config.message_lifetime_s * 1000,
            file_wait_s=config.file_wait_s,
            outbox_capacity=config.outbox_capacity,
            alert_after_ms=int(config.alert_after_s * 1000),
            directory_grace_ms=int(config.directory_grace_s * 1000),
        ),
        keys=base.keys,
        directory=base.directory,
        database=base.database,
        delivery=delivery,
        tracer=base.tracer,
        catch_up=base.sync,
    )
    base.directory.on_change(lambda _document: _reload_keys(config, exchange))
    return exchange


def _overlap_services(
    base: _Foundation, keys: Callable[[], AgencyKeys]
) -> tuple[OverlapService, RevealService, PsiWorkers]:
    """Overlap checks and reveals, sharing one pool of PSI worker processes."""
    psi = PsiWorkers()
    overlap = OverlapService(
        database=base.database,
        directory=base.directory,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        checks_per_day=base.config.overlap_checks_per_day,
        psi=psi,
    )
    reveal = RevealService(
        database=base.database,
        directory=base.directory,
        keys=keys,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        checks_per_day=base.config.overlap_checks_per_day,
        psi=psi,
    )
    return overlap, reveal, psi


def _indicator_service(base: _Foundation, keys: Callable[[], AgencyKeys]) -> IndicatorService:
    return IndicatorService(
        database=base.database,
        directory=base.directory,
        keys=keys,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        offers=_offer_settings(base),
    )


def _sighting_service(base: _Foundation, keys: Callable[[], AgencyKeys]) -> SightingService:
    return SightingService(
        database=base.database,
        directory=base.directory,
        keys=keys,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        reports=_offer_settings(base),
    )


def _campaign_service(
    base: _Foundation, overlap: OverlapService, exchange: ExchangeService
) -> CampaignService:
    return CampaignService(
        database=base.database,
        directory=base.directory,
        overlap=overlap,
        requests=exchange,
        agency_id=base.config.agency_id,
        clock=now_ms,
        rules=LinkRules(
            min_shared=base.config.campaign_min_shared,
            max_sets_per_value=base.config.campaign_max_sets_per_value,
        ),
    )


def _servers(base: _Foundation, services: _Services) -> NodeServers:
    """The federation server (mutual TLS) and the Local API server, not started yet."""
    directory = base.directory
    return build_servers(
        federation=FederationServicer(
            exchange=services.exchange,
            directory_version=lambda: directory.version,
        ),
        audit=AuditServicer(
            audit=services.audit, disclosure=services.disclosure, directory=directory
        ),
        witness=WitnessServicer(witness=services.witness),
        directory=DirectoryServicer(directory=directory),
        evidence=EvidenceServicer(evidence=services.evidence),
        groups=GroupsServicer(groups=services.groups),
        indicators=IndicatorsServicer(
            indicators=services.indicators,
            overlap=services.overlap,
            reveal=services.reveal,
            sightings=services.sightings,
        ),
        local=_local_servicer(base, services),
        listen=base.config.listen,
        local_socket=base.config.local_socket,
        tls=base.tls,
        max_concurrent_rpcs=base.config.max_concurrent_rpcs,
        tracer=base.tracer,
        share_port=base.config.share_port,
    )


def _local_servicer(base: _Foundation, services: _Services) -> LocalServicer:
    return LocalServicer(
        exchange=services.exchange,
        directory=base.directory,
        evidence=services.evidence,
        disclosure=services.disclosure,
        indicators=services.indicators,
        overlap=services.overlap,
        groups=services.groups,
        reveal=services.reveal,
        campaigns=services.campaigns,
        sightings=services.sightings,
    )


def _running(base: _Foundation, services: _Services, servers: NodeServers) -> RunningNode:
    """The started node, with its background tasks running."""
    config = base.config
    return RunningNode(
        config=config,
        servers=servers,
        exchange=services.exchange,
        delivery=services.delivery,
        database=base.database,
        peers=base.peers,
        tracer_provider=base.provider,
        audit=services.audit,
        directory=base.directory,
        directory_sync=base.sync,
        evidence=services.evidence,
        disclosure=services.disclosure,
        indicators=services.indicators,
        overlap=services.overlap,
        psi=services.psi,
        groups=services.groups,
        reveal=services.reveal,
        campaigns=services.campaigns,
        sightings=services.sightings,
        incarnation=base.incarnation,
        _uploading=asyncio.create_task(
            services.evidence.run(config.poll_interval_s * 5), name="comity-evidence-upload"
        ),
        _resending=asyncio.create_task(
            services.indicators.offers.run(config.indicator_resend_interval_s),
            name="comity-set-offers",
        ),
        _reporting=asyncio.create_task(
            services.sightings.reports.run(config.indicator_resend_interval_s),
            name="comity-sighting-reports",
        ),
    )


def _offer_settings(base: _Foundation) -> OfferSettings:
    """Indicator set offers and sighting reports retry like deliveries."""
    delivery = _delivery_settings(base.config, base.incarnation.owner)
    return OfferSettings(owner=delivery.owner, retry=delivery.retry, lease_ms=delivery.lease_ms)


def _delivery_settings(config: NodeConfig, owner: str) -> DeliverySettings:
    return DeliverySettings(
        owner=owner,  # this run of this replica (node/replica.py)
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
