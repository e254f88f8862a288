# SPDX-License-Identifier: Apache-2.0
"""Asking other members' witnesses to cosign this node's newest checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

import grpc

from node.audit.names import witness_name
from node.audit.note import split_note
from node.errors import ComityError
from node.gen.comity.v1 import audit_pb2, audit_pb2_grpc
from node.members import Member
from node.services.audit import AuditService
from node.storage import audit_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.transport.status import error_from_rpc

_LOG = logging.getLogger(__name__)


async def collect_cosignatures(
    *,
    audit: AuditService,
    database: Database,
    witnesses: Sequence[tuple[Member, grpc.aio.Channel]],
    clock: Callable[[], int],
) -> int:
    """Ask each witness to cosign the log's current checkpoint; store the lines. Returns how
    many witnesses cosigned. A witness that is down or refuses is logged and skipped."""
    note = await audit.signed_checkpoint()
    size = int(split_note(note)[0].split("\n")[1])
    cosigned = 0
    for member, channel in witnesses:
        name = witness_name(member.agency_id)
        try:
            line = await _ask(audit, database, channel, note=note, size=size, name=name)
        except ComityError as e:
            _LOG.warning("witness %s did not cosign size %d: %s", name, size, e.code)
            continue
        await database.run(partial(_store, database, size, name, line, clock))
        cosigned += 1
    return cosigned


async def _ask(
    audit: AuditService,
    database: Database,
    channel: grpc.aio.Channel,
    *,
    note: str,
    size: int,
    name: str,
) -> str:
    def last() -> int:
        with transaction(database.engine) as session:
            return audit_repo.last_cosigned_size(session, witness=name)

    old_size = await database.run(last)
    proof = await audit.consistency_proof(old_size=old_size, new_size=size) if old_size else []
    request = audit_pb2.AddCheckpointRequest(old_size=old_size, consistency_proof=proof, note=note)
    try:
        reply = await audit_pb2_grpc.WitnessStub(channel).AddCheckpoint(request, timeout=10)
    except grpc.aio.AioRpcError as e:
        raise error_from_rpc(e, peer=name) from e
    return reply.line


def _store(database: Database, size: int, name: str, line: str, clock: Callable[[], int]) -> None:
    with transaction(database.engine) as session:
        audit_repo.save_cosignature(session, size=size, witness=name, line=line, now_ms=clock())
