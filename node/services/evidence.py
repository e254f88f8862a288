# SPDX-License-Identifier: Apache-2.0
"""Evidence return: a signed manifest of SHA-256 digests, then sealed chunks, resumable.

The requested party stores the files in chunks together with the "evidence" lifecycle message
that carries their manifest (one transaction), then pushes the chunks to the requester,
starting wherever the requester's Status says it stopped: an interrupted upload (a crash, a
partition) resumes and never sends a stored chunk twice. The requester checks each chunk as it
arrives (its place, the seal, its digest; the whole file's digest with its last chunk) and
stores it at once; nothing unverified is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from nacl.exceptions import CryptoError
from nacl.public import Box, PublicKey
from sqlmodel import Session

from node.crypto.keys import AgencyKeys
from node.errors import (
    ComityError,
    ErrorKind,
    NotFoundError,
    PeerIdentityError,
    SealError,
)
from node.forms.registry import get_message_type
from node.forms.validate import validate_form
from node.ids import new_exchange_id, parse_exchange_id
from node.members import Directory, Member
from node.model.request import Direction, RequestView
from node.services.evidence_upload import (
    CHUNK_SIZE,
    MAX_EVIDENCE_BYTES,
    EvidenceFile,
    EvidenceSpool,
    header_manifest,
    manifest_body,
)
from node.services.lifecycle import move, own_role
from node.storage import evidence_repo, exchange_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import Evidence, Exchange

_LOG = logging.getLogger(__name__)

UPLOAD_BATCH = 16
"""Chunks read from the database at a time while uploading (bounded memory)."""


class ChunkOutOfOrderError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "chunk_out_of_order"


class ChunkDuplicateError(ComityError):
    kind = ErrorKind.CONFLICT
    code = "chunk_duplicate"


class ChunkDigestError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "chunk_digest_mismatch"


class FileDigestError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "file_digest_mismatch"


@dataclass(frozen=True, kw_only=True)
class Chunk:
    evidence_id: str
    item: int
    index: int
    sealed: bytes


@dataclass(frozen=True, kw_only=True)
class ItemProgress:
    item: int
    next_chunk: int
    verified: bool


@dataclass(frozen=True, kw_only=True)
class Progress:
    evidence_id: str
    items: tuple[ItemProgress, ...]

    @property
    def complete(self) -> bool:
        return all(i.verified for i in self.items)


class EvidenceTransport(Protocol):
    async def evidence_status(self, member: Member, evidence_id: str) -> Progress: ...

    async def upload_evidence(self, member: Member, chunks: AsyncIterator[Chunk]) -> Progress: ...


class MessageSender(Protocol):
    async def send_message(
        self,
        *,
        request_id: str,
        kind: str,
        body_json: bytes,
        within: Callable[[Session, Exchange], None] | None = None,
    ) -> RequestView: ...


# --- manifests -------------------------------------------------------------------------------


def build_manifest(
    evidence_id: str, files: Sequence[tuple[str, str, bytes]], note: str | None
) -> tuple[bytes, list[list[bytes]]]:
    """The manifest body (canonical JSON) and each file's chunks, for (name, media type,
    content) triples held in memory (small sets: tests, tools)."""
    items, chunked = [], []
    for name, media_type, content in files:
        chunks = [content[i : i + CHUNK_SIZE] for i in range(0, len(content), CHUNK_SIZE)]
        chunked.append(chunks)
        items.append(
            {
                "name": name,
                "media_type": media_type,
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "chunks": [hashlib.sha256(c).hexdigest() for c in chunks],
            }
        )
    return manifest_body(evidence_id, items, note, CHUNK_SIZE), chunked


def manifest_items(manifest: bytes) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(manifest)["items"]
    return items


# --- the service -----------------------------------------------------------------------------


class EvidenceService:
    """Sends evidence for requests this agency received, and receives it for its own."""

    def __init__(
        self,
        *,
        database: Database,
        messages: MessageSender,
        transport: EvidenceTransport,
        directory: Directory,
        keys: Callable[[], AgencyKeys],
        clock: Callable[[], int],
        max_bytes: int = MAX_EVIDENCE_BYTES,
        spool_dir: Path | None = None,
    ) -> None:
        """``spool_dir`` holds evidence while it streams in (an unlinked temporary file per
        upload; the system's temporary directory when None), at most ``max_bytes`` a set."""
        self._max_bytes = max_bytes
        self._spool_dir = spool_dir
        self._database = database
        self._messages = messages
        self._transport = transport
        self._directory = directory
        self._keys = keys
        self._clock = clock
        self._wake = asyncio.Event()

    async def upload(
        self,
        *,
        request_id: str,
        files: Sequence[EvidenceFile],
        note: str | None,
        data: AsyncIterator[tuple[int, bytes]],
    ) -> RequestView:
        """Take a set of evidence as its sender streams it (``data``: file number and bytes,
        file after file), store it with its manifest message, then upload it in the
        background. The header (request, names, media types, note) is checked before any
        data is taken; nothing is stored unless the whole stream arrived.

        Raises:
            FormValidationError: a name, media type or note the manifest cannot carry.
            NotFoundError, ComityError: no such request, or evidence is not this party's
                move now (as for any lifecycle message).
            UploadOrderError: data out of order, or a data message too large.
            EvidenceTooLargeError: the set passed its size limit (the rest is not read).
        """
        evidence_id = str(new_exchange_id())
        await self._database.run(partial(self._check_header, request_id, files, note))
        with EvidenceSpool(files, max_bytes=self._max_bytes, directory=self._spool_dir) as spool:
            async for file, chunk in data:
                await asyncio.to_thread(spool.write, file, chunk)
            manifest = spool.manifest(evidence_id, note)

            def store(session: Session, row: Exchange) -> None:
                evidence_repo.insert_evidence(
                    session,
                    evidence_id=evidence_id,
                    exchange_id=row.id,
                    direction=Direction.OUTBOUND,
                    manifest=manifest,
                    now_ms=self._clock(),
                )
                session.flush()  # the chunks refer to it
                for item, index, chunk in spool.chunks():
                    evidence_repo.insert_chunk(
                        session, evidence_id=evidence_id, item=item, idx=index, data=chunk
                    )

            view = await self._messages.send_message(
                request_id=request_id, kind="evidence", body_json=manifest, within=store
            )
        self._wake.set()
        return view

    def _check_header(
        self, request_id: str, files: Sequence[EvidenceFile], note: str | None
    ) -> None:
        """Refuse, before any data is taken, what sending the set would refuse anyway."""
        body = validate_form(
            get_message_type("evidence"), header_manifest(str(new_exchange_id()), files, note)
        )
        exchange_id = parse_exchange_id(request_id)
        with transaction(self._database.engine) as session:
            row = exchange_repo.get_exchange(session, exchange_id)
            if row is None:
                raise NotFoundError(f"no request {exchange_id} at this node")
            move(
                row,
                kind="evidence",
                fields=json.loads(body),
                by=own_role(row),
                now_ms=self._clock(),
            )

    # --- uploading (the requested party) ---

    async def run(self, interval_s: float) -> None:
        """Upload pending evidence until cancelled: at once when woken, else every interval."""
        while True:
            try:
                await self.upload_pending()
            except ComityError as e:
                _LOG.info("evidence upload paused: %s", e.code)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_s)

    def wake(self) -> None:
        self._wake.set()

    async def upload_pending(self) -> int:
        """Push every incomplete outbound set as far as it goes; how many are complete now."""
        pending = await self._database.run(self._pending)
        done = 0
        for evidence, peer in pending:
            member = self._directory.find(peer)
            if member is None:
                continue
            try:
                progress = await self._transport.evidence_status(member, evidence.evidence_id)
                if not progress.complete:
                    chunks = self._chunks(evidence, progress, member)
                    progress = await self._transport.upload_evidence(member, chunks)
            except ComityError as e:
                _LOG.info("evidence %s not uploaded yet: %s", evidence.evidence_id, e.code)
                continue
            if progress.complete:
                await self._database.run(partial(self._mark_complete, evidence.evidence_id))
                done += 1
        return done

    def _pending(self) -> list[tuple[Evidence, str]]:
        with transaction(self._database.engine) as session:
            result = []
            for evidence in evidence_repo.evidence_to_upload(session):
                exchange = exchange_repo.get_exchange(session, evidence.exchange_id)
                if exchange is not None:
                    result.append((evidence, exchange.peer))
            return result

    def _mark_complete(self, evidence_id: str) -> None:
        with transaction(self._database.engine) as session:
            evidence_repo.set_evidence_complete(session, evidence_id)

    async def _chunks(
        self, evidence: Evidence, progress: Progress, member: Member
    ) -> AsyncIterator[Chunk]:
        box = Box(self._keys().encryption, PublicKey(member.encryption_key))
        for state in progress.items:
            start = state.next_chunk
            while True:
                batch = await self._database.run(
                    partial(self._batch, evidence.evidence_id, state.item, start)
                )
                for offset, data in enumerate(batch):
                    yield Chunk(
                        evidence_id=evidence.evidence_id,
                        item=state.item,
                        index=start + offset,
                        sealed=bytes(box.encrypt(data)),
                    )
                if len(batch) < UPLOAD_BATCH:
                    break
                start += len(batch)

    def _batch(self, evidence_id: str, item: int, start: int) -> list[bytes]:
        with transaction(self._database.engine) as session:
            return evidence_repo.chunk_data(session, evidence_id, item, start, UPLOAD_BATCH)

    # --- receiving (the requester) ---

    async def status(self, evidence_id: str) -> Progress:
        """Which chunks of an inbound set are here.

        Raises:
            NotFoundError: no such evidence here (yet).
        """
        return await self._database.run(lambda: self._status(evidence_id))

    def _status(self, evidence_id: str) -> Progress:
        with transaction(self._database.engine) as session:
            evidence = _inbound(session, evidence_id)
            return _progress(session, evidence)

    async def receive(
        self, chunks: AsyncIterator[Chunk], *, peer_fingerprint: str | None
    ) -> Progress:
        """Check and store chunks as they come; the progress after the last.

        Raises:
            ComityError: the first chunk that fails, by its own error (what came before it
                stays stored).
        """
        last: Progress | None = None
        async for chunk in chunks:
            last = await self._database.run(partial(self._store, chunk, peer_fingerprint))
        if last is None:
            raise NotFoundError("no chunk was sent")
        return last

    def _store(self, chunk: Chunk, peer_fingerprint: str | None) -> Progress:
        with transaction(self._database.engine) as session:
            evidence = _inbound(session, chunk.evidence_id)
            member = self._sender(session, evidence, peer_fingerprint)
            items = manifest_items(evidence.manifest)
            if not 0 <= chunk.item < len(items):
                raise ChunkDigestError(f"evidence has no file {chunk.item}")
            digests: list[str] = items[chunk.item]["chunks"]
            _check_place(session, chunk, total=len(digests))
            data = self._open(chunk, member)
            if hashlib.sha256(data).hexdigest() != digests[chunk.index]:
                raise ChunkDigestError(
                    f"chunk {chunk.index} of file {chunk.item} does not match its digest in "
                    "the manifest"
                )
            if chunk.index == len(digests) - 1:
                _check_file(session, chunk, data, expected=str(items[chunk.item]["sha256"]))
            evidence_repo.insert_chunk(
                session, evidence_id=chunk.evidence_id, item=chunk.item, idx=chunk.index, data=data
            )
            session.flush()
            progress = _progress(session, evidence)
            if progress.complete:
                evidence_repo.set_evidence_complete(session, evidence.evidence_id)
            return progress

    def _sender(self, session: Session, evidence: Evidence, fingerprint: str | None) -> Member:
        exchange = exchange_repo.get_exchange(session, evidence.exchange_id)
        member = self._directory.find(exchange.peer) if exchange else None
        if member is None or member.tls_fingerprint != fingerprint:
            raise PeerIdentityError("the TLS client is not the party that sent this evidence")
        return member

    def _open(self, chunk: Chunk, member: Member) -> bytes:
        box = Box(self._keys().encryption, PublicKey(member.encryption_key))
        try:
            return bytes(box.decrypt(chunk.sealed))
        except (CryptoError, ValueError, TypeError) as e:
            raise SealError(f"chunk {chunk.index} of file {chunk.item} does not open") from e

    # --- reading ---

    async def list_sets(self, request_id: str) -> list[EvidenceSetView]:
        exchange_id = parse_exchange_id(request_id)

        def load() -> list[EvidenceSetView]:
            with transaction(self._database.engine) as session:
                if exchange_repo.get_exchange(session, exchange_id) is None:
                    raise NotFoundError(f"no request {exchange_id} at this node")
                return [
                    _set_view(session, e)
                    for e in evidence_repo.evidence_for_exchange(session, exchange_id)
                ]

        return await self._database.run(load)

    async def read_file(self, request_id: str, evidence_id: str, item: int) -> AsyncIterator[bytes]:
        """A stored file, chunk by chunk, each checked against the manifest again.

        Raises:
            NotFoundError: no such evidence or file, or the file is not complete.
            ChunkDigestError, FileDigestError: the stored data no longer matches.
        """
        evidence, meta = await self._database.run(lambda: self._file(request_id, evidence_id, item))
        digests: list[str] = meta["chunks"]
        whole = hashlib.sha256()
        start = 0
        while start < len(digests):
            batch = await self._database.run(
                partial(self._batch, evidence.evidence_id, item, start)
            )
            for offset, data in enumerate(batch):
                if hashlib.sha256(data).hexdigest() != digests[start + offset]:
                    raise ChunkDigestError(f"stored chunk {start + offset} no longer matches")
                whole.update(data)
                yield data
            start += len(batch)
        if whole.hexdigest() != meta["sha256"]:
            raise FileDigestError("the stored file no longer matches the manifest")

    def _file(
        self, request_id: str, evidence_id: str, item: int
    ) -> tuple[Evidence, dict[str, Any]]:
        exchange_id = parse_exchange_id(request_id)
        with transaction(self._database.engine) as session:
            evidence = evidence_repo.get_evidence(session, evidence_id)
            if evidence is None or evidence.exchange_id != exchange_id:
                raise NotFoundError(f"no evidence {evidence_id} in request {exchange_id}")
            items = manifest_items(evidence.manifest)
            if not 0 <= item < len(items):
                raise NotFoundError(f"evidence {evidence_id} has no file {item}")
            held = evidence_repo.chunks_held(session, evidence_id, item)
            if held < len(items[item]["chunks"]):
                raise NotFoundError(f"file {item} is not complete yet ({held} chunks here)")
            return evidence, items[item]


@dataclass(frozen=True, kw_only=True)
class EvidenceItemView:
    index: int
    name: str
    media_type: str
    size: int
    sha256: str
    chunks_total: int
    chunks_here: int

    @property
    def verified(self) -> bool:
        return self.chunks_here == self.chunks_total


@dataclass(frozen=True, kw_only=True)
class EvidenceSetView:
    evidence_id: str
    direction: Direction
    created_at_ms: int
    complete: bool
    note: str | None
    items: tuple[EvidenceItemView, ...]


def _set_view(session: Session, evidence: Evidence) -> EvidenceSetView:
    manifest = json.loads(evidence.manifest)
    return EvidenceSetView(
        evidence_id=evidence.evidence_id,
        direction=Direction(evidence.direction),
        created_at_ms=evidence.created_at_ms,
        complete=evidence.complete,
        note=manifest.get("note"),
        items=tuple(
            EvidenceItemView(
                index=i,
                name=item["name"],
                media_type=item["media_type"],
                size=item["size"],
                sha256=item["sha256"],
                chunks_total=len(item["chunks"]),
                chunks_here=evidence_repo.chunks_held(session, evidence.evidence_id, i),
            )
            for i, item in enumerate(manifest["items"])
        ),
    )


def _inbound(session: Session, evidence_id: str) -> Evidence:
    evidence = evidence_repo.get_evidence(session, evidence_id)
    if evidence is None or evidence.direction != Direction.INBOUND:
        raise NotFoundError(f"no evidence {evidence_id} expected here (yet)")
    return evidence


def _progress(session: Session, evidence: Evidence) -> Progress:
    items = manifest_items(evidence.manifest)
    states = []
    for i, item in enumerate(items):
        held = evidence_repo.chunks_held(session, evidence.evidence_id, i)
        states.append(ItemProgress(item=i, next_chunk=held, verified=held == len(item["chunks"])))
    return Progress(evidence_id=evidence.evidence_id, items=tuple(states))


def _check_place(session: Session, chunk: Chunk, *, total: int) -> None:
    expected = evidence_repo.chunks_held(session, chunk.evidence_id, chunk.item)
    if chunk.index >= total:
        raise ChunkDigestError(f"file {chunk.item} has {total} chunks, not {chunk.index + 1}")
    if chunk.index < expected:
        raise ChunkDuplicateError(f"chunk {chunk.index} of file {chunk.item} is here already")
    if chunk.index > expected:
        raise ChunkOutOfOrderError(
            f"chunk {chunk.index} of file {chunk.item} arrived where {expected} was expected"
        )


def _check_file(session: Session, chunk: Chunk, last: bytes, *, expected: str) -> None:
    whole = hashlib.sha256()
    start = 0
    while True:
        batch = evidence_repo.chunk_data(
            session, chunk.evidence_id, chunk.item, start, UPLOAD_BATCH
        )
        for data in batch:
            whole.update(data)
        if len(batch) < UPLOAD_BATCH:
            break
        start += len(batch)
    whole.update(last)
    if whole.hexdigest() != expected:
        raise FileDigestError(f"file {chunk.item} does not match its digest in the manifest")
