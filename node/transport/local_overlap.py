# SPDX-License-Identifier: Apache-2.0
"""The Local service's reveal calls, for ``comity overlap ask|requests|consent|refuse|reveal``."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import local_pb2
from node.ids import AgencyId
from node.services.overlap_reveal import DEFAULT_VALID_MS, RevealService, RevealView

Context = grpc.aio.ServicerContext[Any, Any]


class LocalReveal:
    """Mixed into LocalServicer: it sets ``_reveal``."""

    _reveal: RevealService

    async def AskReveal(  # noqa: N802 (the names are the RPCs')
        self, request: local_pb2.AskRevealRequest, _context: Context
    ) -> local_pb2.RevealRequestView:
        view = await self._reveal.ask(
            AgencyId(request.agency),
            request.reason,
            list(request.set_ids),
            valid_ms=request.valid_ms or DEFAULT_VALID_MS,
        )
        return reveal_view(view)

    async def ListRevealRequests(  # noqa: N802
        self, _request: local_pb2.ListRevealRequestsRequest, _context: Context
    ) -> local_pb2.RevealRequestList:
        views = await self._reveal.list_requests()
        return local_pb2.RevealRequestList(requests=[reveal_view(v) for v in views])

    async def DecideReveal(  # noqa: N802
        self, request: local_pb2.DecideRevealRequest, _context: Context
    ) -> local_pb2.RevealRequestView:
        view = await self._reveal.decide(request.request_id, consent=request.consent)
        return reveal_view(view)

    async def RevealOverlap(  # noqa: N802
        self, request: local_pb2.RevealOverlapRequest, _context: Context
    ) -> local_pb2.RevealedOverlap:
        result = await self._reveal.reveal(request.request_id)
        return local_pb2.RevealedOverlap(
            agency=result.agency,
            request_id=result.request_id,
            mine=result.mine,
            theirs=result.theirs,
            matches=[local_pb2.IndicatorEntry(type=t, value=v) for t, v in result.matches],
        )


def reveal_view(view: RevealView) -> local_pb2.RevealRequestView:
    r = view.request
    answer = local_pb2.RevealRequestView(
        request_id=r.request_id,
        direction=view.direction,
        requester=r.requester,
        responder=r.responder,
        set_ids=list(r.set_ids),
        items=r.items,
        reason=r.reason,
        created_ms=r.created_ms,
        expires_ms=r.expires_ms,
        state=view.state,
    )
    if view.decided_at_ms is not None:
        answer.decided_ms = view.decided_at_ms
    if view.shared is not None:
        answer.shared = view.shared
    return answer
