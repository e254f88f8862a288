# SPDX-License-Identifier: Apache-2.0
"""Queries for the accepted versions of the federation directory, inside the caller's
transaction."""

from __future__ import annotations

from sqlmodel import Session, col, select

from node.storage.tables import TrustedDirectory


def trusted_directories(session: Session) -> list[TrustedDirectory]:
    """Every accepted directory version, oldest first."""
    return list(session.exec(select(TrustedDirectory).order_by(col(TrustedDirectory.version))))


def save_trusted_directory(session: Session, *, version: int, document: bytes, now_ms: int) -> None:
    session.add(TrustedDirectory(version=version, document=document, accepted_at_ms=now_ms))
