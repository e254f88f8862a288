# SPDX-License-Identifier: Apache-2.0
"""Tables of the node's people: users, their roles, service tokens, and which unit filed
which case. Secrets are stored only as hashes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, String
from sqlmodel import Field

from node.storage.tables import Base


class UserRow(Base, table=True):
    """A person (or a case-management system) who may use this node."""

    __tablename__ = "comity_user"

    name: str = Field(sa_column=Column(String(63), primary_key=True))
    unit: str = Field(sa_column=Column(String(127), nullable=False))
    os_user: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True, unique=True)
    )
    """The login on the node's machine that the local socket maps to this user."""
    enabled: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class UserRoleRow(Base, table=True):
    __tablename__ = "user_role"

    name: str = Field(
        sa_column=Column(String(63), ForeignKey("comity_user.name"), primary_key=True)
    )
    role: str = Field(sa_column=Column(String(32), primary_key=True))


class TokenRow(Base, table=True):
    """A scoped token of a service account: only the SHA-256 of its secret is kept."""

    __tablename__ = "api_token"

    token_id: str = Field(sa_column=Column(String(32), primary_key=True))
    name: str = Field(
        sa_column=Column(String(63), ForeignKey("comity_user.name"), nullable=False, index=True)
    )
    label: str = Field(sa_column=Column(String(127), nullable=False))
    secret_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class CaseUnitRow(Base, table=True):
    """The unit (and user) that filed an outbound case: investigators see their unit's."""

    __tablename__ = "case_unit"

    exchange_id: str = Field(
        sa_column=Column(String(36), ForeignKey("exchange.id"), primary_key=True)
    )
    unit: str = Field(sa_column=Column(String(127), nullable=False, index=True))
    filed_by: str = Field(sa_column=Column(String(63), nullable=False))
