# SPDX-License-Identifier: Apache-2.0
"""Tables of sign-in: passwords and second factors, failed attempts, sessions, and OpenID
Connect sign-ins under way. Secrets are stored as hashes (passwords as Argon2id, session
secrets as SHA-256) or sealed (TOTP seeds)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String
from sqlmodel import Field

from node.storage.tables import Base


class CredentialRow(Base, table=True):
    """A user's password and second factor for the console."""

    __tablename__ = "user_credential"

    name: str = Field(
        sa_column=Column(String(63), ForeignKey("comity_user.name"), primary_key=True)
    )
    password_hash: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    """Argon2id, in the PHC string format (parameters and salt included)."""
    totp_sealed: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    """The TOTP seed, sealed with the node's credential key (base64)."""
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    """The 30-second step of the last code accepted: a code is good once."""
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class SignInAttemptRow(Base, table=True):
    """Failed sign-ins under one user name, whether or not such a user exists (so that the
    lockout tells nobody which names are users)."""

    __tablename__ = "sign_in_attempt"

    name: str = Field(sa_column=Column(String(63), primary_key=True))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    """Attempts begun since the last success or lock (counted before the password is checked,
    so that concurrent guesses cannot pass the limit)."""
    locked_until_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class SessionRow(Base, table=True):
    """A console session: only the SHA-256 of its secret is kept."""

    __tablename__ = "user_session"

    session_id: str = Field(sa_column=Column(String(32), primary_key=True))
    name: str = Field(
        sa_column=Column(String(63), ForeignKey("comity_user.name"), nullable=False, index=True)
    )
    secret_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    method: str = Field(sa_column=Column(String(16), nullable=False))
    """How the session was opened: ``password`` (with TOTP) or ``oidc``."""
    roles: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    """Comma-separated roles the identity provider granted (OIDC); none: the user's own."""
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_used_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    """The absolute end, whatever the use."""
    revoked_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class OidcLoginRow(Base, table=True):
    """An OpenID Connect sign-in sent to the identity provider and not back yet."""

    __tablename__ = "oidc_login"

    state_sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    nonce: str = Field(sa_column=Column(String(128), nullable=False))
    code_verifier: str = Field(sa_column=Column(String(128), nullable=False))
    expires_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
