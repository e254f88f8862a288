# SPDX-License-Identifier: Apache-2.0
"""Sighting reports over gRPC: Indicators.ReportSighting (a holder of a set tells its owner)
and the Local service's ReportSighting and ListSightings, for ``comity indicators`` (at the
owner the reports it received; at a holder its own, with their delivery)."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import indicators_pb2, local_pb2
from node.indicators.sightings import Sighting, SightingKind
from node.services.sighting_reports import SentReport
from node.services.sightings import SightingService
from node.transport.peer_gate import current_peer

Context = grpc.aio.ServicerContext[Any, Any]


class SightingRpcs:
    """Mixed into IndicatorsServicer: it sets ``_sightings``."""

    _sightings: SightingService

    async def ReportSighting(  # noqa: N802 (the name is the RPC's)
        self, request: indicators_pb2.SignedSighting, _context: Context
    ) -> indicators_pb2.SightingAck:
        stored = await self._sightings.receive(
            request.document, request.signature, peer=current_peer()
        )
        sighting = Sighting.from_bytes(request.document)
        return indicators_pb2.SightingAck(sighting_id=sighting.sighting_id, duplicate=not stored)


class LocalSightings:
    """Mixed into LocalServicer: it sets ``_sightings``."""

    _sightings: SightingService

    async def ReportSighting(  # noqa: N802 (the names are the RPCs')
        self, request: local_pb2.ReportSightingRequest, _context: Context
    ) -> local_pb2.SightingView:
        sent = await self._sightings.report(
            request.set_id,
            indicator=(request.type, request.value),
            kind=SightingKind.parse(request.kind),
            note=request.note if request.HasField("note") else None,
        )
        return sent_view(sent)

    async def ListSightings(  # noqa: N802
        self, request: local_pb2.GetIndicatorSetRequest, _context: Context
    ) -> local_pb2.SightingList:
        stored = await self._sightings.list_for(request.set_id)
        sent = await self._sightings.sent_about(request.set_id)
        return local_pb2.SightingList(
            sightings=[sighting_view(s.sighting, s.received_at_ms) for s in stored]
            + [sent_view(s) for s in sent]
        )


def sighting_view(sighting: Sighting, received_at_ms: int = 0) -> local_pb2.SightingView:
    view = local_pb2.SightingView(
        sighting_id=sighting.sighting_id,
        set_id=sighting.set_id,
        owner=sighting.owner,
        reporter=sighting.reporter,
        type=sighting.type,
        value=sighting.value,
        kind=sighting.kind.value,
        reported_at_ms=sighting.at_ms,
        received_at_ms=received_at_ms,
    )
    if sighting.note is not None:
        view.note = sighting.note
    return view


def sent_view(sent: SentReport) -> local_pb2.SightingView:
    """A report this node made, with where its delivery to the owner stands."""
    view = sighting_view(sent.sighting)
    view.delivery = sent.state.value
    view.attempts = sent.attempts
    if sent.last_error is not None:
        view.last_error = sent.last_error
    if sent.next_attempt_at_ms is not None:
        view.next_attempt_at_ms = sent.next_attempt_at_ms
    return view
