# SPDX-License-Identifier: Apache-2.0
"""The approvals queue: actions a person asked for that wait for a supervisor (four-eyes)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String
from sqlmodel import Field

from node.storage.tables import MAX_ERROR_CHARS, Base

MAX_REASON_CHARS = 2000
MAX_SUMMARY_CHARS = 500


class ApprovalRow(Base, table=True):
    """One held action: the local operation and its request as the person sent it, who asked,
    and, once decided, who decided, why, and how running it ended."""

    __tablename__ = "approval"
    __table_args__ = (Index("ix_approval_status_requested", "status", "requested_at_ms"),)

    approval_id: str = Field(sa_column=Column(String(36), primary_key=True))
    operation: str = Field(sa_column=Column(String(64), nullable=False))
    """The local RPC's method name, e.g. ``FileRequest``."""
    request: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    """The operation's request message, serialised as the person sent it."""
    policy: str = Field(sa_column=Column(String(40), nullable=False))
    summary: str = Field(sa_column=Column(String(MAX_SUMMARY_CHARS), nullable=False))
    requested_by: str = Field(sa_column=Column(String(63), nullable=False, index=True))
    requester_unit: str = Field(sa_column=Column(String(127), nullable=False))
    requester_via: str = Field(sa_column=Column(String(16), nullable=False))
    requested_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    decided_by: str | None = Field(default=None, sa_column=Column(String(63), nullable=True))
    decided_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    reason: str | None = Field(
        default=None, sa_column=Column(String(MAX_REASON_CHARS), nullable=True)
    )
    error_code: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    error_message: str | None = Field(
        default=None, sa_column=Column(String(MAX_ERROR_CHARS), nullable=True)
    )
    finished_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    result: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """Once done: the operation's answer, serialised, for the person who asked."""
