# SPDX-License-Identifier: Apache-2.0
"""The names a member's log and witness go by in signed notes.

The node that signs and the auditor that checks must spell them alike, so both take them from
here. Pure: no I/O.
"""

from __future__ import annotations

_ORIGIN_PREFIX, _ORIGIN_SUFFIX = "comity/", "/audit/v1"


def log_origin(agency_id: str) -> str:
    """The log's C2SP origin: unique per agency and log, never reused."""
    return f"{_ORIGIN_PREFIX}{agency_id}{_ORIGIN_SUFFIX}"


def agency_of_origin(origin: str) -> str | None:
    """The agency whose log ``origin`` names; None when it is not a Comity audit log's."""
    agency = origin.removeprefix(_ORIGIN_PREFIX).removesuffix(_ORIGIN_SUFFIX)
    return agency if agency and origin == log_origin(agency) else None


def witness_name(agency_id: str) -> str:
    """The name under which an agency cosigns other members' checkpoints."""
    return f"comity/{agency_id}/witness/v1"
