# SPDX-License-Identifier: Apache-2.0
"""The Local service's indicator-set calls, for the ``comity indicators`` commands."""

from __future__ import annotations

from typing import Any

import grpc

from node import wire
from node.gen.comity.v1 import local_pb2
from node.ids import AgencyId
from node.indicators.pdq_index import too_weak_to_keep
from node.services.indicators import IndicatorService, SetView
from node.services.overlap import OverlapService
from node.services.pdq_matcher import PDQ_MAX_DISTANCE
from node.services.set_offers import SetDelivery

Context = grpc.aio.ServicerContext[Any, Any]


class LocalIndicators:
    """Mixed into LocalServicer: it sets ``_indicators``."""

    _indicators: IndicatorService
    _overlap: OverlapService

    async def CreateIndicatorSet(  # noqa: N802 (the names are the RPCs')
        self, request: local_pb2.CreateIndicatorSetRequest, _context: Context
    ) -> local_pb2.IndicatorSetView:
        view = await self._indicators.create(
            tlp=request.tlp,
            recipients=[AgencyId(r) for r in request.recipients],
            clients={g.recipient: list(g.clients) for g in request.clients},
        )
        return set_view(view)

    async def AddIndicators(  # noqa: N802
        self, request: local_pb2.AddIndicatorsRequest, _context: Context
    ) -> local_pb2.IndicatorSetView:
        kept = [e for e in request.indicators if not _weak_pdq(e)]
        indicators = [wire.indicator_from_proto(entry) for entry in kept]
        answer = set_view(await self._indicators.add(request.set_id, indicators))
        answer.discarded = len(request.indicators) - len(kept)
        return answer

    async def ListIndicatorSets(  # noqa: N802
        self, _request: local_pb2.ListIndicatorSetsRequest, _context: Context
    ) -> local_pb2.IndicatorSetList:
        views = await self._indicators.list_sets()
        return local_pb2.IndicatorSetList(sets=[set_view(v) for v in views])

    async def GetIndicatorSet(  # noqa: N802
        self, request: local_pb2.GetIndicatorSetRequest, _context: Context
    ) -> local_pb2.IndicatorSetView:
        view = await self._indicators.get(request.set_id)
        return set_view(view, with_indicators=True)

    async def ShareIndicatorSet(  # noqa: N802
        self, request: local_pb2.ShareIndicatorSetRequest, _context: Context
    ) -> local_pb2.IndicatorSetView:
        return set_view(await self._indicators.share(request.set_id, AgencyId(request.recipient)))

    async def RevokeIndicatorSet(  # noqa: N802
        self, request: local_pb2.GetIndicatorSetRequest, _context: Context
    ) -> local_pb2.IndicatorSetView:
        return set_view(await self._indicators.revoke(request.set_id))

    async def CheckOverlap(  # noqa: N802
        self, request: local_pb2.CheckOverlapRequest, _context: Context
    ) -> local_pb2.OverlapCount:
        result = await self._overlap.check(
            AgencyId(request.agency), list(request.set_ids) or None, reason=request.reason
        )
        return local_pb2.OverlapCount(
            agency=result.agency,
            mine=result.mine,
            theirs=result.theirs,
            shared=result.shared,
            check_id=result.check_id,
        )

    async def MatchPdq(  # noqa: N802
        self, request: local_pb2.MatchPdqRequest, _context: Context
    ) -> local_pb2.PdqMatches:
        distance = request.max_distance if request.HasField("max_distance") else PDQ_MAX_DISTANCE
        matches = await self._indicators.match_pdq(request.hash, distance)
        return local_pb2.PdqMatches(
            matches=[
                local_pb2.PdqMatch(
                    set_id=m.set_id, owner=m.owner, value=m.value, distance=m.distance
                )
                for m in matches
            ]
        )


def _weak_pdq(entry: local_pb2.IndicatorEntry) -> bool:
    return too_weak_to_keep(entry.type, entry.quality if entry.HasField("quality") else None)


def set_view(view: SetView, *, with_indicators: bool = False) -> local_pb2.IndicatorSetView:
    s = view.indicator_set
    answer = local_pb2.IndicatorSetView(
        set_id=s.set_id,
        owner=s.owner,
        version=s.version,
        tlp=s.tlp.value,
        recipients=list(s.recipients),
        clients=[local_pb2.ClientGrant(recipient=r, clients=list(c)) for r, c in s.clients.items()],
        revoked=s.revoked,
        received_from=view.received_from or "",
        indicator_count=len(s.indicators),
        shared_with=list(view.shared_with),
        deliveries=[_delivery(d) for d in view.deliveries],
    )
    if with_indicators:
        answer.indicators.extend(wire.indicator_to_proto(i) for i in s.indicators)
    return answer


def _delivery(delivery: SetDelivery) -> local_pb2.SetDelivery:
    return local_pb2.SetDelivery(
        recipient=delivery.recipient,
        delivered_version=delivery.delivered_version or 0,
        state=delivery.state.value,
        owed_version=delivery.owed_version or 0,
        attempts=delivery.attempts,
        last_error=delivery.last_error or "",
        next_attempt_at_ms=delivery.next_attempt_at_ms,
    )
