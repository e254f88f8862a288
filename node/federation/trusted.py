# SPDX-License-Identifier: Apache-2.0
"""The directory a node trusts: persisted, replaced only by a verified newer version.

Every accepted version is stored in the node's database with the instant it was accepted.
At start the newest stored version wins over the directory file, so a node restarted with an
old file keeps the newer version it already trusts (no rollback through the file system).
Replicas sharing one database read each other's accepted versions on :meth:`refresh`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node.errors import ConfigError, DirectoryError, NotFoundError
from node.federation.document import SignedDirectory, parse_directory
from node.federation.rules import verify_initial, verify_update
from node.members import Member, MemberEntry
from node.storage import directory_repo
from node.storage.database import Database
from node.storage.engine import create_engine, transaction
from node.storage.tables import TrustedDirectory as TrustedDirectoryRow

_LOG = logging.getLogger(__name__)

Listener = Callable[[SignedDirectory], None]


class FederationDirectory:
    """The trusted directory of one node (the :class:`~node.members.Directory` of services).

    Member views are computed at the current instant, so a key leaves them the moment its
    validity ends or its revocation time passes, without waiting for a new version.
    """

    def __init__(
        self,
        *,
        database: Database,
        current: SignedDirectory,
        accepted_at: dict[int, int],
        clock: Callable[[], int],
    ) -> None:
        self._database = database
        self._current = current
        self._accepted_at = accepted_at
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    # --- the Directory protocol ----------------------------------------------------------

    @property
    def version(self) -> int:
        return self._current.version

    def find(self, agency_id: str) -> Member | None:
        entry = self._current.body.member(agency_id)
        return None if entry is None else entry.view_at(self._clock())

    def members(self) -> Sequence[Member]:
        return current_members(self._current, now_ms=self._clock())

    def entries(self) -> Sequence[MemberEntry]:
        return self._current.body.members

    def trust_roots(self) -> bytes:
        """PEM certificates of every listed member: the only TLS peers a node accepts."""
        return b"".join(m.tls_certificate for m in self._current.body.members)

    # --- beyond the protocol ---------------------------------------------------------------

    @property
    def document(self) -> SignedDirectory:
        return self._current

    @property
    def expires_ms(self) -> int:
        return self._current.body.expires_ms

    def entry(self, agency_id: str) -> MemberEntry | None:
        """Everything the directory lists for an agency, expired and revoked keys included."""
        return self._current.body.member(agency_id)

    def superseded_at(self, version: int) -> int | None:
        """When this node accepted a version newer than ``version`` (None: not superseded)."""
        newer = [at for v, at in self._accepted_at.items() if v > version]
        return min(newer) if newer else None

    async def document_bytes(self, version: int) -> bytes:
        """A trusted version's document: the newest for 0.

        Raises:
            NotFoundError: this node never trusted that version.
        """
        if version in (0, self.version):
            return self._current.to_json()

        def load() -> bytes | None:
            with transaction(self._database.engine) as session:
                row = session.get(TrustedDirectoryRow, version)
                return None if row is None else row.document

        data = await self._database.run(load)
        if data is None:
            raise NotFoundError(f"this node never trusted directory version {version}")
        return data

    def on_change(self, listener: Listener) -> None:
        """Call ``listener`` (on the thread that installs it) with every newly trusted version."""
        self._listeners.append(listener)

    @classmethod
    async def open(
        cls, *, database: Database, bootstrap: Path | None, clock: Callable[[], int]
    ) -> FederationDirectory:
        """The directory stored in ``database``, updated from the ``bootstrap`` file.

        A node with nothing stored trusts the file once it passes :func:`verify_initial`;
        afterwards the file only counts if it is a valid newer version.

        Raises:
            ConfigError: nothing stored and no usable file.
            DirectoryError: nothing stored and the file breaks a trust rule.
        """
        stored = await database.run(lambda: _load_stored(database))
        file_bytes = _read_file(bootstrap) if bootstrap is not None else None
        if not stored:
            if file_bytes is None:
                raise ConfigError("no federation directory: set federation.directory_file")
            document = parse_directory(file_bytes)
            verify_initial(document, now_ms=clock())
            await database.run(lambda: _store(database, document, file_bytes, clock()))
            stored = [(document, clock())]
        current = stored[-1][0]
        directory = cls(
            database=database,
            current=current,
            accepted_at={d.version: at for d, at in stored},
            clock=clock,
        )
        if file_bytes is not None:
            await directory._adopt_file(file_bytes)
        return directory

    async def _adopt_file(self, data: bytes) -> None:
        try:
            await self.install(data)
        except DirectoryError as e:
            if e.rule != "rollback":
                raise
            _LOG.warning(
                "the directory file is not newer than trusted version %d; keeping it", self.version
            )

    async def install(self, data: bytes, *, intermediate: bool = False) -> bool:
        """Verify ``data`` against the trusted directory and trust it from now on.

        Returns False when it is the version already trusted (same signed content). An
        ``intermediate`` version, on the way to a newer one, may have expired.

        Raises:
            DirectoryError: the rule it breaks.
        """
        candidate = parse_directory(data)
        return await self._database.run(lambda: self._install(candidate, data, intermediate))

    async def refresh(self) -> None:
        """Pick up versions another replica of this node stored in the shared database."""
        stored = await self._database.run(lambda: _load_stored(self._database))
        with self._lock:
            for document, at in stored:
                self._accepted_at.setdefault(document.version, at)
            newest = stored[-1][0] if stored else self._current
        if newest.version > self.version:
            self._switch(newest)

    def _install(self, candidate: SignedDirectory, data: bytes, intermediate: bool) -> bool:
        with self._lock:
            if candidate.signed_bytes() == self._current.signed_bytes():
                return False
            verify_update(self._current, candidate, now_ms=self._clock(), intermediate=intermediate)
            now = self._clock()
            try:
                _store(self._database, candidate, data, now)
            except IntegrityError:
                _LOG.info("directory version %d was stored by a replica", candidate.version)
            self._accepted_at[candidate.version] = now
        self._switch(candidate)
        return True

    def _switch(self, document: SignedDirectory) -> None:
        self._current = document
        _LOG.info("trusting federation directory version %d", document.version)
        for listener in self._listeners:
            listener(document)


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read directory file {path}: {e.strerror}") from e


def _load_stored(database: Database) -> list[tuple[SignedDirectory, int]]:
    with transaction(database.engine) as session:
        rows = directory_repo.trusted_directories(session)
        return [(parse_directory(row.document), row.accepted_at_ms) for row in rows]


def _store(database: Database, document: SignedDirectory, data: bytes, now_ms: int) -> None:
    with transaction(database.engine) as session:
        directory_repo.save_trusted_directory(
            session, version=document.version, document=data, now_ms=now_ms
        )


def read_trusted(*, database_url: str, bootstrap: Path, now_ms: int) -> SignedDirectory:
    """The directory a (possibly stopped) node trusts, for command-line tools.

    The newest version in the node's database, else the directory file checked as a first
    directory.

    Raises:
        ConfigError: nothing stored and no readable file.
        DirectoryError: nothing stored and the file breaks a trust rule.
    """
    engine = create_engine(database_url)
    try:
        with transaction(engine) as session:
            rows = directory_repo.trusted_directories(session) if _has_table(session) else []
    finally:
        engine.dispose()
    if rows:
        return parse_directory(rows[-1].document)
    data = _read_file(bootstrap)
    if data is None:
        raise ConfigError(f"no federation directory: {bootstrap} does not exist")
    document = parse_directory(data)
    verify_initial(document, now_ms=now_ms)
    return document


def _has_table(session: Session) -> bool:
    return inspect(session.connection()).has_table(TrustedDirectoryRow.__tablename__)


def current_members(document: SignedDirectory, *, now_ms: int) -> list[Member]:
    """The members of ``document`` as they stand at ``now_ms`` (active keys only)."""
    views = (entry.view_at(now_ms) for entry in document.body.members)
    return [view for view in views if view is not None]
