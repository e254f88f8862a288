# SPDX-License-Identifier: Apache-2.0
"""The node's users: who they are, their roles, their service tokens, and identifying them.

A person reaches the node through the local socket under their own login (the node learns the
login from the kernel, not from the caller) or, for a case-management system, with a scoped
token. Tokens are shown once when created; only their SHA-256 is stored (they are 256-bit
random, so a fast hash suffices), and they expire and can be revoked.

The first user is made when the node first starts with an empty user table: ``admin``, mapped
to the login named in ``[people] bootstrap_os_user`` (``comity node init`` writes the login
that initialised the node), with the roles of ``[people] bootstrap_roles``; it comes from the
configuration and is not an audit event. Every later change to users, roles and tokens, and
every local call refused, is a leaf of the audit log naming who did it in its commitments
(:mod:`node.services.attribution`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlmodel import Session

from node.errors import ComityError, ErrorKind, NotFoundError
from node.model.people import (
    Actor,
    BadUserError,
    Role,
    Via,
    check_unit,
    check_user_name,
)
from node.services.access import current_actor
from node.services.attribution import OncePerHour, record_local
from node.storage import people_repo as repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.people_tables import TokenRow, UserRow

_LOG = logging.getLogger(__name__)
BOOTSTRAP_USER = "admin"
BOOTSTRAP_UNIT = "node administration"
TOKEN_PREFIX = "ctk"  # noqa: S105 (the public prefix of every token, not a secret)
DAY_MS = 86_400_000
MAX_TOKEN_DAYS = 366
OS_LOGIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class UnknownOsUserError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "unknown_os_user"


class UserDisabledError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "user_disabled"


class BadTokenError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_token"


class TokenExpiredError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "token_expired"


class TokenRevokedError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "token_revoked"


class UserExistsError(ComityError):
    kind = ErrorKind.CONFLICT
    code = "user_exists"


class LastAdminError(ComityError):
    """The change would leave the node with no enabled admin, and nobody to undo it."""

    kind = ErrorKind.PRECONDITION
    code = "last_admin"


@dataclass(frozen=True, kw_only=True)
class UserView:
    name: str
    unit: str
    os_user: str | None
    enabled: bool
    roles: frozenset[Role]
    created_at_ms: int


@dataclass(frozen=True, kw_only=True)
class TokenView:
    token_id: str
    name: str
    label: str
    created_at_ms: int
    expires_at_ms: int
    revoked_at_ms: int | None


@dataclass(frozen=True, kw_only=True)
class NewToken:
    view: TokenView
    secret: str
    """The whole token, shown once: ``ctk_<id>_<secret>``."""


class PeopleService:
    def __init__(self, *, database: Database, clock: Callable[[], int], agency_id: str) -> None:
        self._database = database
        self._clock = clock
        self._me = agency_id
        self._refusals = OncePerHour()

    def _record(
        self,
        session: Session,
        event: str,
        actor: Actor | None,
        *,
        subject: str,
        detail: str | None = None,
    ) -> None:
        record_local(
            session,
            event=event,
            me=self._me,
            actor=actor,
            now_ms=self._clock(),
            subject=subject,
            detail=detail,
        )

    async def record_refusal(self, operation: str, actor: Actor | None, error: ComityError) -> None:
        """Log a refused local call (the hook of the local server's sign-in step), once per
        caller, operation and refusal code in an hour."""
        now = self._clock()
        key = (actor.name if actor is not None else "", operation, error.code)
        if not self._refusals.due(key, now):
            return

        def work() -> None:
            with transaction(self._database.engine) as session:
                self._record(session, "call.refused", actor, subject=operation, detail=error.code)

        try:
            await self._database.run(work)
        except ComityError as failed:  # the caller still gets the refusal, not this
            _LOG.warning("a refused %s call could not be logged: %s", operation, failed.code)
            return
        self._refusals.done(key, now)

    # --- set-up -----------------------------------------------------------------------

    async def bootstrap(self, *, os_user: str | None, roles: frozenset[Role]) -> UserView | None:
        """Make the first admin if the node has no users yet; ``None`` if it has some."""
        if os_user is None:
            return None

        def work() -> UserView | None:
            with transaction(self._database.engine) as session:
                if repo.count_users(session) > 0:
                    return None
                return self._add(session, BOOTSTRAP_USER, BOOTSTRAP_UNIT, roles, os_user)

        return await self._database.run(work)

    # --- identifying callers ----------------------------------------------------------

    async def identify_os_user(self, login: str) -> Actor:
        """The user the node's machine login ``login`` maps to.

        Raises:
            UnknownOsUserError: no user is mapped to it (the message says how to add one).
            UserDisabledError: the user is disabled.
        """

        def work() -> Actor:
            with transaction(self._database.engine) as session:
                row = repo.user_of_os_login(session, login)
                if row is None:
                    raise UnknownOsUserError(
                        f"the login {login!r} is not a Comity user of this node; an admin "
                        f"adds it with: comity users add NAME --unit UNIT --role ROLE "
                        f"--os-user {login}"
                    )
                return _actor(session, row, Via.OS_USER)

        return await self._database.run(work)

    async def identify_token(self, token: str) -> Actor:
        """The user a service token belongs to.

        Raises:
            BadTokenError, TokenExpiredError, TokenRevokedError, UserDisabledError.
        """
        token_id, secret = _split_token(token)
        now = self._clock()

        def work() -> Actor:
            with transaction(self._database.engine) as session:
                row = repo.get_token(session, token_id)
                if row is None or not hmac.compare_digest(row.secret_sha256, _sha256(secret)):
                    raise BadTokenError("the token is not one this node issued")
                if row.revoked_at_ms is not None:
                    raise TokenRevokedError(f"token {token_id} was revoked")
                if row.expires_at_ms <= now:
                    raise TokenExpiredError(f"token {token_id} has expired")
                user = repo.get_user(session, row.name)
                if user is None:  # pragma: no cover (a token's user is never deleted)
                    raise BadTokenError("the token's user no longer exists")
                return _actor(session, user, Via.TOKEN)

        return await self._database.run(work)

    async def actor_of(self, name: str, via: Via) -> Actor:
        """The enabled user ``name`` as an actor (for sign-in paths that checked a secret).

        Raises:
            NotFoundError, UserDisabledError.
        """

        def work() -> Actor:
            with transaction(self._database.engine) as session:
                return _actor(session, _user(session, name), via)

        return await self._database.run(work)

    # --- managing users ---------------------------------------------------------------

    async def add_user(
        self, *, name: str, unit: str, roles: Iterable[Role], os_user: str | None
    ) -> UserView:
        """Raises: BadUserError, UserExistsError (the name or the login is taken)."""
        check_user_name(name)
        check_unit(unit)
        if os_user is not None:
            _check_login(os_user)
        wanted = frozenset(roles)
        if not wanted:
            raise BadUserError("a user needs at least one role (--role)")
        actor = current_actor()

        def work() -> UserView:
            with transaction(self._database.engine) as session:
                if repo.get_user(session, name) is not None:
                    raise UserExistsError(f"user {name!r} already exists")
                if os_user is not None and repo.user_of_os_login(session, os_user):
                    raise UserExistsError(f"the login {os_user!r} is already mapped to a user")
                view = self._add(session, name, unit, wanted, os_user)
                self._record(session, "user.added", actor, subject=name, detail=_roles(view))
                return view

        return await self._database.run(work)

    async def list_users(self) -> list[UserView]:
        def work() -> list[UserView]:
            with transaction(self._database.engine) as session:
                return [_view(session, row) for row in repo.list_users(session)]

        return await self._database.run(work)

    async def get_user(self, name: str) -> UserView:
        def work() -> UserView:
            with transaction(self._database.engine) as session:
                return _view(session, _user(session, name))

        return await self._database.run(work)

    async def set_enabled(self, name: str, *, enabled: bool) -> UserView:
        """Raises: NotFoundError, LastAdminError (disabling the last enabled admin)."""
        actor = current_actor()

        def work() -> UserView:
            with transaction(self._database.engine) as session:
                row = _user(session, name)
                row.enabled = enabled
                row.updated_at_ms = self._clock()
                session.add(row)
                session.flush()
                _keep_an_admin(session)
                event = "user.enabled" if enabled else "user.disabled"
                self._record(session, event, actor, subject=name)
                return _view(session, row)

        return await self._database.run(work)

    async def change_roles(
        self, name: str, *, grant: Iterable[Role], revoke: Iterable[Role]
    ) -> UserView:
        """Raises: NotFoundError, BadUserError (no role left), LastAdminError."""
        granted, revoked = frozenset(grant), frozenset(revoke)
        actor = current_actor()

        def work() -> UserView:
            with transaction(self._database.engine) as session:
                row = _user(session, name)
                roles = (repo.roles_of(session, name) | granted) - revoked
                if not roles:
                    raise BadUserError(f"user {name!r} would hold no role; disable it instead")
                repo.set_roles(session, name, roles)
                row.updated_at_ms = self._clock()
                session.add(row)
                _keep_an_admin(session)
                view = _view(session, row)
                changed = "user.roles-changed"
                self._record(session, changed, actor, subject=name, detail=_roles(view))
                return view

        return await self._database.run(work)

    # --- service tokens ---------------------------------------------------------------

    async def create_token(self, *, name: str, label: str, days: int) -> NewToken:
        """A new token for user ``name``, valid ``days`` days; its secret is shown once.

        Raises: NotFoundError, BadUserError (a bad label or lifetime).
        """
        if not 1 <= days <= MAX_TOKEN_DAYS:
            raise BadUserError(f"a token lives 1 to {MAX_TOKEN_DAYS} days, not {days}")
        if not 1 <= len(label) <= 127 or not label.isprintable():
            raise BadUserError("a token label is 1-127 printable characters")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = self._clock()
        row = TokenRow(
            token_id=token_id,
            name=name,
            label=label,
            secret_sha256=_sha256(secret),
            created_at_ms=now,
            expires_at_ms=now + days * DAY_MS,
        )
        actor = current_actor()

        def work() -> TokenView:
            with transaction(self._database.engine) as session:
                _user(session, name)
                repo.add_token(session, row)
                detail = f"user={name} days={days}"
                self._record(session, "token.created", actor, subject=token_id, detail=detail)
                return _token_view(row)

        view = await self._database.run(work)
        return NewToken(view=view, secret=f"{TOKEN_PREFIX}_{token_id}_{secret}")

    async def list_tokens(self, name: str | None) -> list[TokenView]:
        def work() -> list[TokenView]:
            with transaction(self._database.engine) as session:
                return [_token_view(row) for row in repo.tokens_of(session, name)]

        return await self._database.run(work)

    async def revoke_token(self, token_id: str) -> TokenView:
        """Raises: NotFoundError."""
        actor = current_actor()

        def work() -> TokenView:
            with transaction(self._database.engine) as session:
                row = repo.get_token(session, token_id)
                if row is None:
                    raise NotFoundError(f"no token {token_id!r}")
                if row.revoked_at_ms is None:
                    row.revoked_at_ms = self._clock()
                    session.add(row)
                    detail = f"user={row.name}"
                    self._record(session, "token.revoked", actor, subject=token_id, detail=detail)
                return _token_view(row)

        return await self._database.run(work)

    def _add(
        self, session: Session, name: str, unit: str, roles: frozenset[Role], os_user: str | None
    ) -> UserView:
        now = self._clock()
        row = UserRow(
            name=name,
            unit=unit,
            os_user=os_user,
            enabled=True,
            created_at_ms=now,
            updated_at_ms=now,
        )
        repo.add_user(session, row, roles)
        return _view(session, row)


def _roles(view: UserView) -> str:
    return "roles=" + ",".join(sorted(view.roles))


def _user(session: Session, name: str) -> UserRow:
    row = repo.get_user(session, name)
    if row is None:
        raise NotFoundError(f"no user {name!r}")
    return row


def _actor(session: Session, row: UserRow, via: Via) -> Actor:
    if not row.enabled:
        raise UserDisabledError(f"user {row.name!r} is disabled")
    return Actor(name=row.name, unit=row.unit, roles=repo.roles_of(session, row.name), via=via)


def _view(session: Session, row: UserRow) -> UserView:
    return UserView(
        name=row.name,
        unit=row.unit,
        os_user=row.os_user,
        enabled=row.enabled,
        roles=repo.roles_of(session, row.name),
        created_at_ms=row.created_at_ms,
    )


def _token_view(row: TokenRow) -> TokenView:
    return TokenView(
        token_id=row.token_id,
        name=row.name,
        label=row.label,
        created_at_ms=row.created_at_ms,
        expires_at_ms=row.expires_at_ms,
        revoked_at_ms=row.revoked_at_ms,
    )


def _keep_an_admin(session: Session) -> None:
    for row in repo.list_users(session):
        if row.enabled and Role.ADMIN in repo.roles_of(session, row.name):
            return
    raise LastAdminError("that would leave no enabled admin; grant admin to someone else first")


def _split_token(token: str) -> tuple[str, str]:
    prefix, _, rest = token.strip().partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or len(token_id) != 16 or not secret:
        raise BadTokenError("a token reads ctk_<id>_<secret>, as `comity tokens create` prints")
    return token_id, secret


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_login(login: str) -> None:
    if not 1 <= len(login) <= 64 or not set(login) <= OS_LOGIN_CHARS:
        raise BadUserError(f"{login!r} is not a login name of this machine")
