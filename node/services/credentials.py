# SPDX-License-Identifier: Apache-2.0
"""Console sign-in: passwords with a TOTP second factor, lockout, and sessions.

Passwords are kept as Argon2id hashes (RFC 9106's recommended parameters, argon2-cffi's
defaults) and hashed off the event loop. A sign-in is counted before the password is
checked, in one atomic update of the name's attempt row, so guesses sent at once cannot pass
the limit: the fifth failure in a row locks the name for 15 minutes. Names with no user
behind them are counted and locked the same way, and their passwords are checked against a
dummy hash, so that neither the answer nor its timing tells whether a user exists.

A successful sign-in opens a session: ``cses_<id>_<secret>``, shown once; only the SHA-256 of
the secret is stored (it is 256-bit random). A session ends 8 hours after its last use,
12 hours after it was opened, or when it is signed out. TOTP seeds are sealed with the node's
credential key (``keys/credentials.key``) and shown only once, as an ``otpauth://`` URI.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from sqlalchemy import update
from sqlmodel import Session, col

from node.errors import ComityError, NotFoundError
from node.files import write_private_file
from node.model.credentials import (
    MAX_PASSWORD,
    SESSION_ID_HEX,
    WRONG_PASSWORD,
    BadPasswordError,
    BadSessionError,
    BadTotpError,
    SessionExpiredError,
    SessionRevokedError,
    SessionToken,
    SignInLockedError,
    TotpNotEnrolledError,
    check_password,
    parse_session_token,
    totp_step,
    totp_uri,
)
from node.model.people import USER_NAME, Actor, Permission, Role, Via
from node.services.access import current_actor, require
from node.services.people import UserDisabledError
from node.storage import credential_repo as repo
from node.storage import people_repo
from node.storage.credential_tables import CredentialRow, SessionRow
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.people_tables import UserRow
from node.timeutil import format_ms

LOCK_AFTER = 5
LOCK_MS = 15 * 60_000
SESSION_IDLE_MS = 8 * 3_600_000
SESSION_MAX_MS = 12 * 3_600_000
TOUCH_EVERY_MS = 60_000
"""A session's last use is written at most this often (not at every call)."""
KEY_FILE = "credentials.key"


class CredentialKeyError(ComityError):
    code = "credential_key_broken"


@dataclass(frozen=True, kw_only=True)
class NewSession:
    token: str
    """``cses_<id>_<secret>``, shown once."""
    session_id: str
    name: str
    expires_at_ms: int
    idle_ms: int


@dataclass(frozen=True, kw_only=True)
class _Factors:
    password_hash: str | None
    totp_seed: str | None
    totp_last_step: int | None


def credential_key(keys_dir: Path) -> bytes:
    """The node's key for sealing TOTP seeds: ``keys_dir/credentials.key``, made (mode 0600)
    the first time it is needed."""
    path = keys_dir / KEY_FILE
    if not path.exists():
        write_private_file(path, secrets.token_bytes(SecretBox.KEY_SIZE))
    key = path.read_bytes()
    if len(key) != SecretBox.KEY_SIZE:
        raise CredentialKeyError(f"{path} is not a {SecretBox.KEY_SIZE}-byte key")
    return key


class CredentialService:
    def __init__(
        self,
        *,
        database: Database,
        clock: Callable[[], int],
        seal_key: bytes,
        issuer: str,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._box = SecretBox(seal_key)
        self._issuer = issuer
        self._hasher = hasher or PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(16))

    # --- setting credentials ----------------------------------------------------------

    async def set_password(self, name: str, password: str, *, current: str | None) -> None:
        """Set user ``name``'s password: an admin for anyone, a user for themself (with the
        current password too, when signed in through a session).

        Raises:
            AccessDeniedError, NotFoundError, WeakPasswordError, BadPasswordError.
        """
        actor = self._may_manage(name)
        check_password(name, password)
        if actor.name == name and actor.via is Via.SESSION:
            factors = await self._factors(name)
            if not await self._verify(factors.password_hash, current or ""):
                raise BadPasswordError(f"{WRONG_PASSWORD} (the current password is needed)")
        hashed = await asyncio.to_thread(self._hasher.hash, password)

        def work() -> None:
            with transaction(self._database.engine) as session:
                _existing_user(session, name)
                row = repo.credential_for_update(session, name, self._clock())
                row.password_hash = hashed
                row.updated_at_ms = self._clock()
                session.add(row)

        await self._database.run(work)

    async def enrol_totp(self, name: str) -> str:
        """A new TOTP seed for ``name`` (replacing any), as the ``otpauth://`` URI to show once.

        Raises:
            AccessDeniedError, NotFoundError.
        """
        self._may_manage(name)
        seed = pyotp.random_base32()
        sealed = base64.b64encode(self._box.encrypt(seed.encode())).decode()

        def work() -> None:
            with transaction(self._database.engine) as session:
                _existing_user(session, name)
                row = repo.credential_for_update(session, name, self._clock())
                row.totp_sealed, row.totp_last_step = sealed, None
                row.updated_at_ms = self._clock()
                session.add(row)

        await self._database.run(work)
        return totp_uri(seed, user=name, issuer=self._issuer)

    async def unlock(self, name: str) -> bool:
        """Lift a lockout of ``name`` and forget its failed attempts; whether there were any.

        Raises:
            AccessDeniedError.
        """
        require(Permission.USERS_ADMIN)

        def work() -> bool:
            with transaction(self._database.engine) as session:
                return repo.clear_attempts(session, name)

        return await self._database.run(work)

    # --- signing in -------------------------------------------------------------------

    async def sign_in(self, name: str, password: str, totp_code: str) -> NewSession:
        """A session for ``name``, if the password and the one-time code are right.

        Raises:
            BadPasswordError, SignInLockedError, TotpNotEnrolledError, BadTotpError,
            UserDisabledError.
        """
        if not USER_NAME.fullmatch(name) or len(password) > MAX_PASSWORD:
            await self._verify(None, password[:MAX_PASSWORD])
            raise BadPasswordError(WRONG_PASSWORD)
        attempt = await self._begin_attempt(name)
        factors = await self._factors(name)
        if not await self._verify(factors.password_hash, password):
            await self._failed(name, attempt)
            raise BadPasswordError(WRONG_PASSWORD)
        if factors.totp_seed is None:
            await self._failed(name, attempt)
            raise TotpNotEnrolledError(
                "no second factor is enrolled for this user; an admin runs "
                "`comity credentials enrol-totp USER`"
            )
        step = totp_step(
            factors.totp_seed, totp_code, now_ms=self._clock(), last_step=factors.totp_last_step
        )
        if step is None:
            await self._failed(name, attempt)
            raise BadTotpError("the one-time code is wrong, or was used already")
        await self._rehash_if_needed(name, factors.password_hash, password)
        return await self._succeeded(name, step)

    async def _begin_attempt(self, name: str) -> int:
        now = self._clock()

        def work() -> tuple[int | None, int | None]:
            with transaction(self._database.engine) as session:
                return repo.begin_attempt(session, name, now), repo.locked_until(session, name)

        attempt, until = await self._database.run(work)
        if attempt is None or attempt > LOCK_AFTER:
            when = format_ms(until) if until else "a few minutes"
            raise SignInLockedError(
                f"too many failed sign-ins under this user name: try again after {when}, "
                "or ask an admin to run `comity credentials unlock USER`"
            )
        return attempt

    async def _failed(self, name: str, attempt: int) -> None:
        if attempt < LOCK_AFTER:
            return  # the attempt was counted when it began

        def work() -> None:
            with transaction(self._database.engine) as session:
                repo.lock(session, name, self._clock() + LOCK_MS)

        await self._database.run(work)

    async def _succeeded(self, name: str, step: int) -> NewSession:
        def work() -> NewSession:
            with transaction(self._database.engine) as session:
                accepted = session.execute(  # type: ignore[attr-defined]  # an UPDATE's result
                    update(CredentialRow)
                    .where(col(CredentialRow.name) == name)
                    .where(
                        col(CredentialRow.totp_last_step).is_(None)
                        | (col(CredentialRow.totp_last_step) < step)
                    )
                    .values(totp_last_step=step)
                ).rowcount
                if not accepted:  # the same code, used by a sign-in running alongside
                    raise BadTotpError("the one-time code is wrong, or was used already")
                repo.clear_attempts(session, name)
                _enabled_user(session, name)
                return self._open(session, name, method="password", roles=None)

        return await self._database.run(work)

    async def _rehash_if_needed(self, name: str, hashed: str | None, password: str) -> None:
        if hashed is None or not self._hasher.check_needs_rehash(hashed):
            return
        rehashed = await asyncio.to_thread(self._hasher.hash, password)

        def work() -> None:
            with transaction(self._database.engine) as session:
                session.execute(
                    update(CredentialRow)
                    .where(col(CredentialRow.name) == name)
                    .values(password_hash=rehashed)
                )

        await self._database.run(work)

    async def _verify(self, hashed: str | None, password: str) -> bool:
        """Whether ``password`` matches ``hashed``; with no hash, as long as if there were."""

        def verify() -> bool:
            try:
                return self._hasher.verify(hashed or self._dummy_hash, password) and bool(hashed)
            except Argon2Error:
                return False

        return await asyncio.to_thread(verify)

    async def _factors(self, name: str) -> _Factors:
        def work() -> CredentialRow | None:
            with transaction(self._database.engine) as session:
                return repo.get_credential(session, name)

        row = await self._database.run(work)
        if row is None:
            return _Factors(password_hash=None, totp_seed=None, totp_last_step=None)
        return _Factors(
            password_hash=row.password_hash,
            totp_seed=self._unseal(row.totp_sealed),
            totp_last_step=row.totp_last_step,
        )

    def _unseal(self, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        try:
            return self._box.decrypt(base64.b64decode(sealed)).decode()
        except (CryptoError, ValueError) as e:
            raise CredentialKeyError(
                "a TOTP seed does not open with keys/credentials.key; enrol the user again"
            ) from e

    # --- sessions ---------------------------------------------------------------------

    async def open_session(
        self, name: str, *, method: str, roles: frozenset[Role] | None
    ) -> NewSession:
        """A session for ``name`` after another way of signing in (OpenID Connect) proved it;
        ``roles`` replace the user's own for the session's life when given.

        Raises:
            NotFoundError, UserDisabledError.
        """

        def work() -> NewSession:
            with transaction(self._database.engine) as session:
                _enabled_user(session, name)
                return self._open(session, name, method=method, roles=roles)

        return await self._database.run(work)

    def _open(
        self, session: Session, name: str, *, method: str, roles: frozenset[Role] | None
    ) -> NewSession:
        token = SessionToken(secrets.token_hex(SESSION_ID_HEX // 2), secrets.token_urlsafe(32))
        now = self._clock()
        row = SessionRow(
            session_id=token.session_id,
            name=name,
            secret_sha256=_sha256(token.secret),
            method=method,
            roles=",".join(sorted(roles)) if roles is not None else None,
            created_at_ms=now,
            last_used_at_ms=now,
            expires_at_ms=now + SESSION_MAX_MS,
        )
        repo.add_session(session, row)
        return NewSession(
            token=str(token),
            session_id=token.session_id,
            name=name,
            expires_at_ms=row.expires_at_ms,
            idle_ms=SESSION_IDLE_MS,
        )

    async def identify_session(self, token: str) -> Actor:
        """The user a session belongs to, marking it used.

        Raises:
            BadSessionError, SessionExpiredError, SessionRevokedError, UserDisabledError.
        """
        parsed = parse_session_token(token)
        now = self._clock()

        def work() -> Actor:
            with transaction(self._database.engine) as session:
                row = _live_session(session, parsed, now)
                if now - row.last_used_at_ms >= TOUCH_EVERY_MS:
                    row.last_used_at_ms = now
                    session.add(row)
                user = _enabled_user(session, row.name)
                roles = people_repo.roles_of(session, row.name)
                if row.roles is not None:
                    roles = frozenset(Role(r) for r in row.roles.split(",") if r)
                return Actor(name=user.name, unit=user.unit, roles=roles, via=Via.SESSION)

        return await self._database.run(work)

    async def sign_out(self, token: str) -> None:
        """End the session ``token`` names, at once (an ended one stays ended).

        Raises:
            BadSessionError: it is not a session of this node.
        """
        parsed = parse_session_token(token)

        def work() -> None:
            with transaction(self._database.engine) as session:
                row = repo.get_session(session, parsed.session_id)
                if row is None or not hmac.compare_digest(
                    row.secret_sha256, _sha256(parsed.secret)
                ):
                    raise BadSessionError("the session is not one this node opened")
                if row.revoked_at_ms is None:
                    row.revoked_at_ms = self._clock()
                    session.add(row)

        await self._database.run(work)

    def _may_manage(self, name: str) -> Actor:
        actor = current_actor()
        if actor.name != name or not actor.is_person:
            require(Permission.USERS_ADMIN)
        return actor


def _live_session(session: Session, token: SessionToken, now: int) -> SessionRow:
    row = repo.get_session(session, token.session_id)
    if row is None or not hmac.compare_digest(row.secret_sha256, _sha256(token.secret)):
        raise BadSessionError("the session is not one this node opened; sign in again")
    if row.revoked_at_ms is not None:
        raise SessionRevokedError(f"session {token.session_id} was signed out; sign in again")
    if now >= row.expires_at_ms or now - row.last_used_at_ms >= SESSION_IDLE_MS:
        raise SessionExpiredError(f"session {token.session_id} has expired; sign in again")
    return row


def _existing_user(session: Session, name: str) -> None:
    if people_repo.get_user(session, name) is None:
        raise NotFoundError(f"no user {name!r}")


def _enabled_user(session: Session, name: str) -> UserRow:
    user = people_repo.get_user(session, name)
    if user is None:
        raise NotFoundError(f"no user {name!r}")
    if not user.enabled:
        raise UserDisabledError(f"user {name!r} is disabled")
    return user


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
