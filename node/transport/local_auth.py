# SPDX-License-Identifier: Apache-2.0
"""Who is calling the local API, and whether they may: established once for every call.

:class:`LocalAuthInterceptor` sits on the local server behind the
:class:`~node.transport.interceptors.ComityServerInterceptor` (which maps its refusals to
statuses). For each Comity call it finds the caller's credentials in the metadata — a console
session (``authorization: Bearer cses_…``), a service token (``authorization: Bearer ctk_…``)
or a login ticket from the identity socket — asks who that is, checks the operation against
:data:`node.services.access.LOCAL_OPERATIONS`, and runs the call as that actor. A refusal is
reported to ``on_refused`` (which records it) before it is returned to the caller. Over the
TLS listener (``local.tls_listen``) only tokens and sessions are taken: tickets stand for logins
of the node's own machine. The operations of :data:`node.services.access.PUBLIC_OPERATIONS`
(signing in and out) run without a signed-in actor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc

from node.errors import ComityError
from node.model.credentials import is_session_token
from node.model.people import Actor
from node.services.access import (
    PUBLIC_OPERATIONS,
    SIGNING_IN,
    NotSignedInError,
    acting_as,
    check_operation,
)
from node.services.credentials import CredentialService
from node.services.people import PeopleService
from node.transport.identity import TICKET_METADATA, LoginTickets
from node.transport.interceptors import Context, wrap_handler

BEARER = "bearer "
Refused = Callable[[str, Actor | None, ComityError], Awaitable[None]]
"""Told of each refused call: the operation, who was identified (if anyone), the error."""


class LocalAuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        *,
        people: PeopleService,
        credentials: CredentialService,
        tickets: LoginTickets,
        on_refused: Refused | None = None,
    ) -> None:
        self._people = people
        self._credentials = credentials
        self._tickets = tickets
        self._on_refused = on_refused

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/comity."):
            return handler  # health and reflection: no case content, no sign-in
        operation = method.rpartition("/")[2]
        if operation in PUBLIC_OPERATIONS:  # signing in (errors still mapped outside)
            return wrap_handler(handler, lambda _context: _signing_in())
        return wrap_handler(handler, lambda context: self._signed_in(context, operation))

    @asynccontextmanager
    async def _signed_in(self, context: Context, operation: str) -> AsyncIterator[None]:
        actor: Actor | None = None
        try:
            actor = await self._identify(
                dict(context.invocation_metadata() or ()),
                over_socket=context.peer().startswith("unix:"),
            )
            check_operation(actor, operation)
        except ComityError as refusal:
            if self._on_refused is not None:
                await self._on_refused(operation, actor, refusal)
            raise
        with acting_as(actor):
            yield

    async def _identify(self, metadata: dict[str, str | bytes], *, over_socket: bool) -> Actor:
        authorization = _text(metadata.get("authorization"))
        if authorization.lower().startswith(BEARER):
            bearer = authorization[len(BEARER) :]
            if is_session_token(bearer):
                return await self._credentials.identify_session(bearer)
            return await self._people.identify_token(bearer)
        # Login tickets stand for a login of this machine: only the socket takes them.
        ticket = _text(metadata.get(TICKET_METADATA)) if over_socket else ""
        login = self._tickets.login_of(ticket) if ticket else None
        if login is not None:
            return await self._people.identify_os_user(login)
        raise NotSignedInError(
            "the call carries no valid sign-in: run `comity` as your own login on the node's "
            "machine, or give a service token in COMITY_TOKEN or COMITY_TOKEN_FILE"
        )


@asynccontextmanager
async def _signing_in() -> AsyncIterator[None]:
    with acting_as(SIGNING_IN):
        yield


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
