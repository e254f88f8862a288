# SPDX-License-Identifier: Apache-2.0
"""Identifier types and their syntax checks. Pure: no I/O."""

from __future__ import annotations

import re
import uuid
from typing import NewType

from node.errors import MalformedError

AgencyId = NewType("AgencyId", str)
MessageId = NewType("MessageId", str)
ExchangeId = NewType("ExchangeId", str)
KeyId = NewType("KeyId", str)

_AGENCY_ID = re.compile(r"[a-z][a-z0-9-]{2,63}")
_KEY_ID = re.compile(r"[0-9a-f]{32}")


def parse_agency_id(value: str, *, field: str = "agency id") -> AgencyId:
    """Return ``value`` as an AgencyId.

    Raises:
        MalformedError: not 3-64 characters of [a-z0-9-] starting with a letter.
    """
    if not _AGENCY_ID.fullmatch(value):
        raise MalformedError(
            f"{field} must be 3-64 characters of a-z, 0-9 and '-', starting with a letter"
        )
    return AgencyId(value)


def _parse_uuid4(value: str, field: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError as e:
        raise MalformedError(f"{field} is not a UUID") from e
    if parsed.version != 4 or str(parsed) != value:
        raise MalformedError(f"{field} must be a UUIDv4 in canonical lowercase form")
    return value


def parse_message_id(value: str) -> MessageId:
    """Return ``value`` as a MessageId.

    Raises:
        MalformedError: not a canonical UUIDv4.
    """
    return MessageId(_parse_uuid4(value, "message_id"))


def parse_exchange_id(value: str) -> ExchangeId:
    """Return ``value`` as an ExchangeId.

    Raises:
        MalformedError: not a canonical UUIDv4.
    """
    return ExchangeId(_parse_uuid4(value, "exchange_id"))


def parse_key_id(value: str, *, field: str = "key_id") -> KeyId:
    """Return ``value`` as a KeyId.

    Raises:
        MalformedError: not 32 lowercase hex characters.
    """
    if not _KEY_ID.fullmatch(value):
        raise MalformedError(f"{field} must be 32 lowercase hex characters")
    return KeyId(value)


def new_message_id() -> MessageId:
    return MessageId(str(uuid.uuid4()))


def new_exchange_id() -> ExchangeId:
    return ExchangeId(str(uuid.uuid4()))
