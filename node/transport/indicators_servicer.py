# SPDX-License-Identifier: Apache-2.0
"""Indicators.OfferSet: a peer passes this node a version of an indicator set."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import indicators_pb2, indicators_pb2_grpc
from node.services.indicators import IndicatorService
from node.tls import peer_certificate_fingerprint
from node.transport.status import answer_or_abort

SERVICE_NAME = indicators_pb2.DESCRIPTOR.services_by_name["Indicators"].full_name

Context = grpc.aio.ServicerContext[Any, Any]


class IndicatorsServicer(indicators_pb2_grpc.IndicatorsServicer):
    def __init__(self, *, indicators: IndicatorService) -> None:
        self._indicators = indicators

    async def OfferSet(  # noqa: N802 (the name is the RPC's)
        self, request: indicators_pb2.SignedIndicatorSet, context: Context
    ) -> indicators_pb2.IndicatorSetAck:
        async def handle() -> indicators_pb2.IndicatorSetAck:
            fingerprint = peer_certificate_fingerprint(context.auth_context())
            offered = await self._indicators.receive(
                request.document, request.signature, peer_fingerprint=fingerprint
            )
            return indicators_pb2.IndicatorSetAck(set_id=offered.set_id, version=offered.version)

        return await answer_or_abort(context, handle, method="Indicators.OfferSet")
