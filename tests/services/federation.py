# SPDX-License-Identifier: Apache-2.0
"""An in-memory federation for services tests: real agencies, no network.

Each agency has real keys, a real TLS certificate (only its fingerprint is used), a real
database, and trusts a real directory document signed by real root keys. Its services are
wired as the composition root wires them, except that the one seam to the network, the
:class:`~node.services.peers.PeerTransport` (and :class:`~node.services.peers.DirectorySource`),
is an :class:`InMemoryNetwork` that hands each envelope, as bytes, to the other agency's
:class:`~node.services.exchange.ExchangeService` directly. Switches on the network make a peer
unreachable, slow, refuse everything, or lose its answers, so retries can be tested without
sockets or sleeps longer than a few milliseconds (python-tuf's repository simulator, applied).

All wiring sits in :func:`wire_agency`: the one place to adapt when the services change shape.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from opentelemetry.trace import NoOpTracer

from node import wire
from node.audit.leaf import Leaf
from node.crypto.envelope import seal_envelope
from node.crypto.keys import AgencyKeys
from node.errors import ComityError, ErrorKind, PeerRejectedError, PeerUnavailableError
from node.federation import ceremony
from node.federation.document import SignedDirectory
from node.federation.trusted import FederationDirectory
from node.forms.registry import get_form_type, schemas_dir
from node.ids import AgencyId, new_exchange_id, new_message_id
from node.members import Member, MemberCard
from node.model.envelope import EnvelopeHeader, SealedEnvelope, SignedReceipt
from node.services.audit import AuditService
from node.services.delivery import DeliverySettings, DeliveryWorker
from node.services.directory_sync import DirectorySync
from node.services.exchange import ExchangeService, ExchangeSettings
from node.services.outbox import RetryPolicy
from node.storage.database import Database
from node.storage.engine import create_engine, upgrade
from node.timeutil import now_ms
from node.tls import certificate_fingerprint
from node.transport.peer_gate import PeerGate, current_peer
from tests.federation.build import card_with_keys

UNIT, AUTHORITY, OTHER = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
ROOT_THRESHOLD = 2
QUICK_RETRY = RetryPolicy(base_s=0.02, cap_s=0.1)


def example_form(request_type: str = "preservation") -> bytes:
    return (schemas_dir() / "examples" / f"{request_type}.example.json").read_bytes()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 5.0, what: str = "condition"
) -> None:
    """Wait until ``check`` holds (background deliveries settle within milliseconds here)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout_s}s")
        await asyncio.sleep(0.01)


class Clock:
    """The federation's one clock: real time, moved forward on demand (expiry, grace)."""

    def __init__(self) -> None:
        self._offset_ms = 0

    def __call__(self) -> int:
        return now_ms() + self._offset_ms

    def advance(self, ms: int) -> None:
        self._offset_ms += ms


@dataclass(frozen=True, kw_only=True)
class Identity:
    """What an agency holds (keys) and what it hands out (member card, TLS fingerprint)."""

    keys: AgencyKeys
    card: MemberCard
    tls_fingerprint: str


@cache
def identity(agency_id: str) -> Identity:
    """Real keys and a real certificate, made once per agency name (certificates are slow)."""
    keys = AgencyKeys.generate()
    card = card_with_keys(agency_id, keys)
    return Identity(
        keys=keys, card=card, tls_fingerprint=certificate_fingerprint(card.tls_certificate)
    )


# --- the network ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class Conditions:
    """What the network does to calls that reach one agency's node."""

    unreachable: bool = False
    unreachable_for: Callable[[EnvelopeHeader], bool] | None = None
    """Only deliveries whose header this picks find the node unreachable (reordering)."""
    latency_s: float = 0.0
    """Added before the node sees the call; beyond the network's timeout the call fails."""
    refuse_with: ComityError | None = None
    """The node answers every call with this error (as its servicer would map it)."""
    lose_answers: int = 0
    """The node handles this many more calls, but their answers never come back."""


@dataclass(frozen=True, kw_only=True)
class Call:
    """One delivery the network carried: who sent what to whom, and how it ended."""

    sender: AgencyId
    recipient: AgencyId
    envelope: SealedEnvelope
    outcome: str
    """``delivered``, or the error code the sender saw."""


class InMemoryNetwork:
    """Routes deliveries and directory fetches between agencies' services, in process.

    A refusal reaches the sender as it does over gRPC: an UNAVAILABLE refusal or a call that
    times out as :class:`PeerUnavailableError`, anything else as :class:`PeerRejectedError`
    with the receiver's error kind and code.
    """

    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        """How long a call may take before its caller gives up on it (the call deadline)."""
        self._agencies: dict[str, Agency] = {}
        self._conditions: dict[str, Conditions] = {}
        self.calls: list[Call] = []

    def attach(self, agency: Agency) -> None:
        self._agencies[agency.agency_id] = agency

    def conditions(self, agency_id: str) -> Conditions:
        """The switches for calls to ``agency_id`` (changed in place by tests)."""
        return self._conditions.setdefault(agency_id, Conditions())

    def heal(self) -> None:
        """Every agency reachable, prompt and answering again."""
        self._conditions.clear()

    def link(self, sender: AgencyId) -> PeerLink:
        return PeerLink(network=self, sender=sender)

    def delivered(self, message_id: str) -> int:
        """How many times a delivery of ``message_id`` was answered with a receipt."""
        return sum(
            1
            for c in self.calls
            if c.envelope.header.message_id == message_id and c.outcome == "delivered"
        )

    async def deliver(
        self, sender: AgencyId, member: Member, envelope: SealedEnvelope
    ) -> SignedReceipt:
        try:
            if self._cut_off(member.agency_id, envelope.header):
                raise PeerUnavailableError(f"node of {member.agency_id} unreachable (UNAVAILABLE)")
            receipt = await self._call(sender, member.agency_id, wire.envelope_to_bytes(envelope))
        except ComityError as e:
            self.calls.append(_call(sender, member, envelope, e.code))
            raise
        self.calls.append(_call(sender, member, envelope, "delivered"))
        return wire.receipt_from_bytes(receipt)

    def _cut_off(self, recipient: AgencyId, header: EnvelopeHeader) -> bool:
        picks = self.conditions(recipient).unreachable_for
        return picks is not None and picks(header)

    async def _call(self, sender: AgencyId, recipient: AgencyId, data: bytes) -> bytes:
        conditions = self.conditions(recipient)
        target = self._agencies.get(recipient)
        if conditions.unreachable or target is None:
            raise PeerUnavailableError(f"node of {recipient} unreachable (UNAVAILABLE)")
        try:
            answer = await asyncio.wait_for(
                self._handle(target, sender, data, conditions), self.timeout_s
            )
        except TimeoutError as e:
            raise PeerUnavailableError(f"node of {recipient} unreachable (DEADLINE)") from e
        finally:
            self._announce(sender, target)
        if conditions.lose_answers > 0:
            conditions.lose_answers -= 1
            raise PeerUnavailableError(f"node of {recipient} unreachable (answer lost)")
        return answer

    async def _handle(
        self, target: Agency, sender: AgencyId, data: bytes, conditions: Conditions
    ) -> bytes:
        await asyncio.sleep(conditions.latency_s)
        try:
            if conditions.refuse_with is not None:
                raise conditions.refuse_with
            # Admitted as the federation server's interceptor admits a call: by its certificate.
            gate = PeerGate(directory=target.directory, max_calls_per_peer=1)
            async with gate.admit({"x509_pem_cert": [identity(sender).card.tls_certificate]}):
                envelope = wire.envelope_from_bytes(data)
                receipt = await target.exchange.receive(envelope, peer=current_peer())
        except ComityError as e:
            raise _as_seen_by_sender(e, peer=target.agency_id) from e
        return wire.receipt_to_bytes(receipt)

    def _announce(self, sender: AgencyId, target: Agency) -> None:
        """The receiver tells its directory version in every answer, as its servicer does."""
        source = self._agencies.get(sender)
        if source is not None:
            source.directory_sync.announce(target.agency_id, target.directory.version)

    async def fetch_directory(self, member: Member, version: int) -> bytes:
        target = self._agencies.get(member.agency_id)
        if target is None or self.conditions(member.agency_id).unreachable:
            raise PeerUnavailableError(f"node of {member.agency_id} unreachable (UNAVAILABLE)")
        try:
            return await target.directory.document_bytes(version)
        except ComityError as e:
            raise _as_seen_by_sender(e, peer=target.agency_id) from e


def _call(sender: AgencyId, member: Member, envelope: SealedEnvelope, outcome: str) -> Call:
    return Call(sender=sender, recipient=member.agency_id, envelope=envelope, outcome=outcome)


def _as_seen_by_sender(error: ComityError, *, peer: str) -> ComityError:
    """What the transport's status mapping turns a receiver's error into at the sender."""
    if error.kind is ErrorKind.UNAVAILABLE:
        return PeerUnavailableError(f"node of {peer} unreachable (UNAVAILABLE): {error.message}")
    return PeerRejectedError(
        f"node of {peer} refused ({error.code}): {error.message}",
        kind=error.kind,
        peer_code=error.code,
    )


@dataclass(frozen=True, kw_only=True)
class PeerLink:
    """One agency's end of the network: its PeerTransport and DirectorySource."""

    network: InMemoryNetwork
    sender: AgencyId

    async def deliver(self, member: Member, envelope: SealedEnvelope) -> SignedReceipt:
        return await self.network.deliver(self.sender, member, envelope)

    async def fetch_directory(self, member: Member, version: int) -> bytes:
        return await self.network.fetch_directory(member, version)


# --- one agency ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """Settings that keep tests fast: short waits, quick retries."""

    file_wait_s: float = 2.0
    outbox_capacity: int = 10_000
    directory_grace_ms: int = 24 * 3600 * 1000
    retry: RetryPolicy = QUICK_RETRY
    poll_interval_s: float = 0.05

    def exchange(self, agency_id: AgencyId) -> ExchangeSettings:
        return ExchangeSettings(
            agency_id=agency_id,
            file_wait_s=self.file_wait_s,
            outbox_capacity=self.outbox_capacity,
            directory_grace_ms=self.directory_grace_ms,
        )

    def delivery(self, agency_id: AgencyId) -> DeliverySettings:
        return DeliverySettings(
            owner=f"{agency_id}/in-memory",
            retry=self.retry,
            lease_ms=5_000,
            poll_interval_s=self.poll_interval_s,
        )


@dataclass(kw_only=True)
class Agency:
    """One agency's node, without its servers: the services the composition root makes."""

    agency_id: AgencyId
    database: Database
    directory: FederationDirectory
    directory_sync: DirectorySync
    delivery: DeliveryWorker
    exchange: ExchangeService
    audit: AuditService

    async def leaves(self) -> list[Leaf]:
        """Every leaf of this agency's audit log, oldest first."""
        note = await self.audit.signed_checkpoint()
        size = int(note.split("\n", 2)[1])
        if size == 0:
            return []
        return [Leaf.from_bytes(b) for b in await self.audit.leaves(start=0, end=size)]

    async def events(self) -> list[str]:
        return [leaf.public.event for leaf in await self.leaves()]

    async def close(self) -> None:
        await self.directory_sync.close()
        await self.delivery.stop(1.0)
        self.database.close()


async def wire_agency(
    agency_id: AgencyId,
    *,
    database_url: str,
    directory_file: Path,
    network: InMemoryNetwork,
    clock: Callable[[], int],
    tuning: Tuning,
) -> Agency:
    """The services of one agency's node, wired as ``node.runtime`` wires them, on
    ``network`` instead of gRPC; its delivery worker started."""
    keys = identity(agency_id).keys
    database = Database(create_engine(database_url))
    await database.run(lambda: upgrade(database.engine))
    directory = await FederationDirectory.open(
        database=database, bootstrap=directory_file, clock=clock
    )
    link = network.link(agency_id)
    sync = DirectorySync(directory=directory, source=link, agency_id=agency_id)
    tracer = NoOpTracer()
    delivery = DeliveryWorker(
        settings=tuning.delivery(agency_id),
        database=database,
        directory=directory,
        transport=link,
        agency_id=agency_id,
        clock=clock,
        tracer=tracer,
    )
    exchange = ExchangeService(
        settings=tuning.exchange(agency_id),
        keys=keys,
        directory=directory,
        database=database,
        delivery=delivery,
        tracer=tracer,
        catch_up=sync,
        clock=clock,
    )
    audit = AuditService(database=database, key=keys.checkpoint, agency_id=agency_id, clock=clock)
    delivery.start()
    agency = Agency(
        agency_id=agency_id,
        database=database,
        directory=directory,
        directory_sync=sync,
        delivery=delivery,
        exchange=exchange,
        audit=audit,
    )
    network.attach(agency)
    return agency


# --- the federation ------------------------------------------------------------------------


@dataclass(kw_only=True)
class Federation:
    """Running agencies on one network, one clock, under one set of root keys."""

    agencies: dict[str, Agency]
    network: InMemoryNetwork
    clock: Clock
    roots: Sequence[SigningKey]
    document: SignedDirectory

    def __getitem__(self, agency_id: str) -> Agency:
        return self.agencies[agency_id]

    def sign(self, draft: SignedDirectory) -> SignedDirectory:
        """``draft`` signed by every root key: a version every agency will trust."""
        for key in self.roots:
            draft = ceremony.sign(draft, key)
        return draft

    async def publish(self, *to: str) -> SignedDirectory:
        """A new directory version (same members, renewed), installed at the agencies ``to``
        only; the others learn of it from their peers."""
        self.document = self.sign(
            ceremony.renew(self.document, now_ms=self.clock(), valid_days=365)
        )
        for agency_id in to:
            await self.agencies[agency_id].directory.install(self.document.to_json())
        return self.document

    def forge(
        self, *, signer: str, recipient: str, payload: bytes, **header: Any
    ) -> SealedEnvelope:
        """A correctly signed and sealed request from ``signer``, with header overrides."""
        member = self.agencies[signer].directory.find(recipient)
        if member is None:
            raise LookupError(f"{recipient} is not listed")
        keys = identity(signer).keys
        created = self.clock()
        fields: dict[str, Any] = {
            "message_id": new_message_id(),
            "exchange_id": new_exchange_id(),
            "sequence": 1,
            "sender": AgencyId(signer),
            "recipient": AgencyId(recipient),
            "created_at_ms": created,
            "expires_at_ms": created + 3_600_000,
            "directory_version": self.agencies[signer].directory.version,
            "payload_type": get_form_type("preservation").payload_type,
            "sender_encryption_key_id": keys.encryption_key_id,
            "recipient_encryption_key_id": member.encryption_key_id,
        } | header
        return seal_envelope(
            header=EnvelopeHeader(**fields),
            payload=payload,
            sender_keys=keys,
            recipient_encryption_key=member.encryption_key,
        )


@cache
def first_directory(
    agency_ids: tuple[AgencyId, ...],
) -> tuple[tuple[SigningKey, ...], SignedDirectory]:
    """Root keys, and version 1 listing ``agency_ids`` signed by all of them (made once per
    set of agencies: every document edit is parsed and checked again)."""
    roots = tuple(SigningKey.generate() for _ in range(ROOT_THRESHOLD + 1))
    document = ceremony.signed_directory(
        [identity(a).card for a in agency_ids],
        root_keys=roots,
        threshold=ROOT_THRESHOLD,
        now_ms=now_ms(),
    )
    return roots, document


@contextlib.asynccontextmanager
async def in_memory_federation(
    agency_ids: Sequence[AgencyId],
    *,
    directory_dir: Path,
    database_url: Callable[[str], str],
    tuning: Tuning = Tuning(),
) -> AsyncIterator[Federation]:
    """Agencies listed in one signed directory version 1, running until the block ends.

    ``database_url`` gives each agency's database (one per name).
    """
    clock = Clock()
    roots, document = first_directory(tuple(agency_ids))
    directory_file = directory_dir / "directory.json"
    directory_file.write_bytes(document.to_json())
    network = InMemoryNetwork()
    agencies: dict[str, Agency] = {}
    try:
        for agency_id in agency_ids:
            agencies[agency_id] = await wire_agency(
                agency_id,
                database_url=database_url(agency_id),
                directory_file=directory_file,
                network=network,
                clock=clock,
                tuning=tuning,
            )
        yield Federation(
            agencies=agencies, network=network, clock=clock, roots=roots, document=document
        )
    finally:
        for agency in agencies.values():
            await agency.close()
