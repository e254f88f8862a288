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
from node.model.people import parse_roles
from node.services.approvals import ApprovalService, ApprovalSettings
from node.services.audit import AuditService
from node.services.campaigns import CampaignService
from node.services.delivery import DeliveryWorker
from node.services.directory_sync import DirectorySync
from node.services.disclosure import DisclosureService
from node.services.evidence import EvidenceService
from node.services.exchange import ExchangeService, ExchangeSettings
from node.services.groups import GroupService
from node.services.indicators import IndicatorService
from node.services.overlap import OverlapLimits, OverlapService
from node.services.overlap_reveal import RevealService
from node.services.people import PeopleService
from node.services.readiness import ReadinessService
from node.services.sightings import SightingService
from node.services.witness import WitnessService
from node.startup import check_listed, read_tls
from node.storage.database import Database
from node.storage.engine import create_engine, redact_url, upgrade
from node.telemetry import TRACER_NAME, make_tracer_provider
from node.timeutil import now_ms
from node.transport.audit_servicer import AuditServicer, WitnessServicer
from node.transport.directory_servicer import DirectoryServicer
from node.transport.evidence_servicer import EvidenceServicer
from node.transport.federation_servicer import FederationServicer
from node.transport.groups_servicer import GroupsClient, GroupsServicer
from node.transport.health_http import HealthHttpServer
from node.transport.indicators_servicer import IndicatorsServicer
from node.transport.local_servicer import LocalServicer
from node.transport.peer_client import PeerClient
from node.transport.server import NodeServers, TlsIdentity, build_servers, local_access
from node.transport.witness_client import collect_cosignatures
from node.tuning import delivery_settings, offer_settings

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
    people: PeopleService
    health: HealthHttpServer | None = None
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

    @property
    def health_port(self) -> int | None:
        return self.health.port if self.health is not None else None

    async def stop(self) -> None:
        """Graceful shutdown: stop accepting, finish in-flight calls, close the database."""
        _LOG.info("stopping (grace %.1fs)", self.config.grace_period_s)
        if self.health is not None:
            await self.health.stop()  # probes fail from now on: take the node out of rotation
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
    base = await _foundation(database, config, keys, tracer_provider)
    services = _services(base)
    await services.people.bootstrap(
        os_user=config.bootstrap_os_user, roles=parse_roles(config.bootstrap_roles)
    )
    servers = _servers(base, services)
    await servers.start()
    services.delivery.start()
    health = await _start_health(base, services)
    _LOG.info(
        "node %s serving federation on port %d, local socket %s, database %s",
        config.agency_id,
        servers.federation_port,
        config.local_socket,
        redact_url(config.database_url),
    )
    running = _running(base, services, servers)
    running.health = health
    return running


async def _start_health(base: _Foundation, services: _Services) -> HealthHttpServer | None:
    """The plain HTTP health port, when ``health.listen`` is set."""
    if base.config.health_listen is None:
        return None
    readiness = ReadinessService(
        database=base.database,
        directory=base.directory,
        keys=services.exchange.current_keys,
        clock=now_ms,
    )
    health = HealthHttpServer(listen=base.config.health_listen, readiness=readiness.check)
    await health.start()
    return health


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
    people: PeopleService


async def _foundation(
    database: Database,
    config: NodeConfig,
    keys: AgencyKeys,
    tracer_provider: TracerProvider | None,
) -> _Foundation:
    """Migrate the database, open the trusted directory and connect to peers."""
    await database.run(lambda: upgrade(database.engine))
    directory = await FederationDirectory.open(
        database=database, bootstrap=config.directory_file, clock=now_ms
    )
    check_listed(config, directory, keys)
    provider = tracer_provider or make_tracer_provider(
        agency_id=config.agency_id,
        exporter=config.telemetry_exporter,
        otlp_endpoint=config.otlp_endpoint,
    )
    certificate, private_key = read_tls(config)
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
        people=PeopleService(database=base.database, clock=now_ms, agency_id=base.config.agency_id),
    )


def _delivery_worker(base: _Foundation) -> DeliveryWorker:
    return DeliveryWorker(
        settings=delivery_settings(base.config),
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
    limits = OverlapLimits(
        checks_per_day=base.config.overlap_checks_per_day,
        items_per_day=base.config.overlap_items_per_day,
        min_items=base.config.overlap_min_items,
    )
    overlap = OverlapService(
        database=base.database,
        directory=base.directory,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        limits=limits,
        psi=psi,
    )
    reveal = RevealService(
        database=base.database,
        directory=base.directory,
        keys=keys,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        limits=limits,
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
        offers=offer_settings(base.config),
    )


def _sighting_service(base: _Foundation, keys: Callable[[], AgencyKeys]) -> SightingService:
    return SightingService(
        database=base.database,
        directory=base.directory,
        keys=keys,
        transport=base.peers,
        agency_id=base.config.agency_id,
        clock=now_ms,
        reports=offer_settings(base.config),
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
        evidence=EvidenceServicer(
            evidence=services.evidence, stream_idle_s=base.config.stream_idle_s
        ),
        groups=GroupsServicer(groups=services.groups),
        indicators=IndicatorsServicer(
            indicators=services.indicators,
            overlap=services.overlap,
            reveal=services.reveal,
            sightings=services.sightings,
            stream_idle_s=base.config.stream_idle_s,
        ),
        local=_local_servicer(base, services),
        access=local_access(
            base.config,
            services.people,
            base.database,
            approvals=ApprovalService(
                database=base.database,
                people=services.people,
                indicators=services.indicators,
                settings=ApprovalSettings(
                    required=base.config.approvals_required,
                    expire_days=base.config.approvals_expire_days,
                ),
                clock=now_ms,
            ),
            on_refused=services.people.record_refusal,
        ),
        listen=base.config.listen,
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
        people=services.people,
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


def _reload_keys(config: NodeConfig, exchange: ExchangeService) -> None:
    """A new directory may list a signing key made by ``comity node rotate-key`` since start."""
    try:
        exchange.use_keys(AgencyKeys.load(config.keys_dir))
    except ConfigError as e:
        _LOG.warning("keeping the keys loaded earlier: %s", e.message)


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
