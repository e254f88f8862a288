# SPDX-License-Identifier: Apache-2.0
"""The exchange: filing a request to a peer, receiving one from a peer, and reading them back.

:mod:`.filing` validates the form, signs and seals it, and stores it with its outbox row in
one transaction; the :class:`~node.services.delivery.DeliveryWorker` takes it from there.
:mod:`.receiving` runs the checks of proto/README.md in their order (verify before parse) and
stores the envelope, its effect and the signed receipt in one transaction. :mod:`.views`
assembles what the Local API shows. Database work runs on the database's own threads so the
event loop keeps serving.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import Tracer
from sqlmodel import Session

from node.crypto.keys import AgencyKeys
from node.ids import AgencyId
from node.members import Directory
from node.model.envelope import SealedEnvelope, SignedReceipt
from node.model.request import Direction, NodeStatusView, RequestPreview, RequestView
from node.services.delivery import DeliveryWorker
from node.services.exchange.filing import Filing
from node.services.exchange.party import ExchangeSettings, Party
from node.services.exchange.receiving import CLOCK_SKEW_MS, MAX_LIFETIME_MS, CatchUp, Receiving
from node.services.exchange.views import RequestPage, Views
from node.storage.database import Database
from node.storage.tables import Exchange
from node.timeutil import now_ms

__all__ = [
    "CLOCK_SKEW_MS",
    "MAX_LIFETIME_MS",
    "CatchUp",
    "ExchangeService",
    "ExchangeSettings",
    "Filing",
    "Party",
    "Receiving",
    "RequestPage",
    "Views",
]


class ExchangeService:
    """Files outbound requests and receives inbound ones for one agency's node: the one
    entry point transport and runtime use, composed of :class:`Filing`, :class:`Receiving`
    and :class:`Views` sharing one :class:`Party`."""

    def __init__(
        self,
        *,
        settings: ExchangeSettings,
        keys: AgencyKeys,
        directory: Directory,
        database: Database,
        delivery: DeliveryWorker,
        tracer: Tracer,
        catch_up: CatchUp | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.party = Party(
            settings=settings,
            keys=keys,
            directory=directory,
            database=database,
            tracer=tracer,
            clock=clock,
        )
        self.views = Views(party=self.party, claim_owner=delivery.owner)
        self.filing = Filing(party=self.party, delivery=delivery, views=self.views)
        self.receiving = Receiving(party=self.party, catch_up=catch_up)

    def use_keys(self, keys: AgencyKeys) -> None:
        """Hold ``keys`` from now on (a rotated signing key appeared in the key directory)."""
        self.party.keys = keys

    def current_keys(self) -> AgencyKeys:
        """This node's keys as it uses them now (after any rotation)."""
        return self.party.current_keys()

    def preview_request(
        self,
        *,
        request_type: str,
        recipient: AgencyId,
        form_json: bytes,
        strip: bool = False,
        campaign_id: str | None = None,
    ) -> RequestPreview:
        """See :meth:`Filing.preview_request`."""
        return self.filing.preview_request(
            request_type=request_type,
            recipient=recipient,
            form_json=form_json,
            strip=strip,
            campaign_id=campaign_id,
        )

    async def file_request(
        self,
        *,
        request_type: str,
        recipient: AgencyId,
        form_json: bytes,
        strip: bool = False,
        campaign_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> RequestView:
        """See :meth:`Filing.file_request`."""
        return await self.filing.file_request(
            request_type=request_type,
            recipient=recipient,
            form_json=form_json,
            strip=strip,
            campaign_id=campaign_id,
            idempotency_key=idempotency_key,
        )

    async def send_message(
        self,
        *,
        request_id: str,
        kind: str,
        body_json: bytes,
        within: Callable[[Session, Exchange], None] | None = None,
    ) -> RequestView:
        """See :meth:`Filing.send_message`."""
        return await self.filing.send_message(
            request_id=request_id, kind=kind, body_json=body_json, within=within
        )

    async def receive(
        self, sealed: SealedEnvelope, *, peer_fingerprint: str | None
    ) -> SignedReceipt:
        """See :meth:`Receiving.receive`."""
        return await self.receiving.receive(sealed, peer_fingerprint=peer_fingerprint)

    async def get_request(self, request_id: str) -> RequestView:
        """See :meth:`Views.get_request`."""
        return await self.views.get_request(request_id)

    async def list_requests(
        self, *, direction: Direction | None, limit: int, page_token: str = ""
    ) -> RequestPage:
        """See :meth:`Views.list_requests`."""
        return await self.views.list_requests(
            direction=direction, limit=limit, page_token=page_token
        )

    async def overdue_requests(self) -> list[RequestView]:
        """See :meth:`Views.overdue_requests`."""
        return await self.views.overdue_requests()

    async def node_status(self) -> NodeStatusView:
        """See :meth:`Views.node_status`."""
        return await self.views.node_status()
