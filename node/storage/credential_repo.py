# SPDX-License-Identifier: Apache-2.0
"""Queries for passwords, failed attempts, sessions and OIDC logins, inside the caller's
transaction."""

from __future__ import annotations

from sqlalchemy import delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from node.storage.credential_tables import (
    CredentialRow,
    OidcLoginRow,
    SessionRow,
    SignInAttemptRow,
)


def get_credential(session: Session, name: str) -> CredentialRow | None:
    return session.get(CredentialRow, name)


def credential_for_update(session: Session, name: str, now_ms: int) -> CredentialRow:
    """The user's credential row, made empty if missing, locked until the transaction ends."""
    row = session.get(CredentialRow, name, with_for_update=True)
    if row is None:
        row = CredentialRow(name=name, updated_at_ms=now_ms)
        session.add(row)
        session.flush()
    return row


def begin_attempt(session: Session, name: str, now_ms: int) -> int | None:
    """Count one more sign-in attempt under ``name``, atomically: the attempt's number since
    the last success or lock, or ``None`` while the name is locked."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(SignInAttemptRow)
        .values(name=name, attempts=0, locked_until_ms=None)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    attempts = col(SignInAttemptRow.attempts)
    locked_until = col(SignInAttemptRow.locked_until_ms)
    counted = session.execute(
        update(SignInAttemptRow)
        .where(col(SignInAttemptRow.name) == name)
        .where(locked_until.is_(None) | (locked_until <= now_ms))
        .values(attempts=attempts + 1, locked_until_ms=None)
        .returning(attempts)
    ).scalar_one_or_none()
    return int(counted) if counted is not None else None


def locked_until(session: Session, name: str) -> int | None:
    row = session.get(SignInAttemptRow, name)
    return row.locked_until_ms if row is not None else None


def lock(session: Session, name: str, until_ms: int) -> None:
    session.execute(
        update(SignInAttemptRow)
        .where(col(SignInAttemptRow.name) == name)
        .values(attempts=0, locked_until_ms=until_ms)
    )


def clear_attempts(session: Session, name: str) -> bool:
    """Forget failed attempts and any lock under ``name``; whether there were any."""
    result = session.execute(delete(SignInAttemptRow).where(col(SignInAttemptRow.name) == name))
    return bool(getattr(result, "rowcount", 0))


def add_session(session: Session, row: SessionRow) -> None:
    session.add(row)
    session.flush()


def get_session(session: Session, session_id: str) -> SessionRow | None:
    return session.get(SessionRow, session_id)


def add_oidc_login(session: Session, row: OidcLoginRow, now_ms: int) -> None:
    session.execute(delete(OidcLoginRow).where(col(OidcLoginRow.expires_at_ms) <= now_ms))
    session.execute(insert(OidcLoginRow).values(**row.model_dump()))


def take_oidc_login(session: Session, state_sha256: str) -> tuple[str, str, int] | None:
    """The nonce, code verifier and expiry of a login under way, removed so that its state
    is good once: ``None`` if there is none (unknown, or used already)."""
    taken = session.execute(
        delete(OidcLoginRow)
        .where(col(OidcLoginRow.state_sha256) == state_sha256)
        .returning(
            col(OidcLoginRow.nonce),
            col(OidcLoginRow.code_verifier),
            col(OidcLoginRow.expires_at_ms),
        )
    ).first()
    return (taken[0], taken[1], int(taken[2])) if taken is not None else None
