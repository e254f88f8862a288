# SPDX-License-Identifier: Apache-2.0
"""The People service of the local socket: users, roles and service tokens."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import local_people_pb2 as pb
from node.gen.comity.v1 import local_people_pb2_grpc
from node.model.people import parse_roles
from node.services.access import current_actor
from node.services.people import PeopleService, TokenView, UserView

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["People"].full_name


class PeopleServicer(local_people_pb2_grpc.PeopleServicer):
    def __init__(self, people: PeopleService) -> None:
        self._people = people

    async def WhoAmI(  # noqa: N802 (the name is the RPC's)
        self, _request: pb.WhoAmIRequest, _context: Context
    ) -> pb.User:
        actor = current_actor()
        user = user_to_proto(await self._people.get_user(actor.name))
        user.signed_in_via = actor.via.value
        # The roles in force for this sign-in (an OIDC session's come from the provider).
        user.roles[:] = sorted(actor.roles)
        return user

    async def AddUser(self, request: pb.AddUserRequest, _context: Context) -> pb.User:  # noqa: N802
        view = await self._people.add_user(
            name=request.name,
            unit=request.unit,
            roles=parse_roles(request.roles),
            os_user=request.os_user or None,
        )
        return user_to_proto(view)

    async def ListUsers(  # noqa: N802
        self, _request: pb.ListUsersRequest, _context: Context
    ) -> pb.UserList:
        return pb.UserList(users=[user_to_proto(v) for v in await self._people.list_users()])

    async def GetUser(self, request: pb.GetUserRequest, _context: Context) -> pb.User:  # noqa: N802
        return user_to_proto(await self._people.get_user(request.name))

    async def SetUserEnabled(  # noqa: N802
        self, request: pb.SetUserEnabledRequest, _context: Context
    ) -> pb.User:
        view = await self._people.set_enabled(request.name, enabled=request.enabled)
        return user_to_proto(view)

    async def ChangeRoles(  # noqa: N802
        self, request: pb.ChangeRolesRequest, _context: Context
    ) -> pb.User:
        view = await self._people.change_roles(
            request.name, grant=parse_roles(request.grant), revoke=parse_roles(request.revoke)
        )
        return user_to_proto(view)

    async def CreateToken(  # noqa: N802
        self, request: pb.CreateTokenRequest, _context: Context
    ) -> pb.NewToken:
        made = await self._people.create_token(
            name=request.name, label=request.label, days=request.days
        )
        return pb.NewToken(token=token_to_proto(made.view), secret=made.secret)

    async def ListTokens(  # noqa: N802
        self, request: pb.ListTokensRequest, _context: Context
    ) -> pb.TokenList:
        views = await self._people.list_tokens(request.name or None)
        return pb.TokenList(tokens=[token_to_proto(v) for v in views])

    async def RevokeToken(  # noqa: N802
        self, request: pb.RevokeTokenRequest, _context: Context
    ) -> pb.Token:
        return token_to_proto(await self._people.revoke_token(request.token_id))


def user_to_proto(view: UserView) -> pb.User:
    return pb.User(
        name=view.name,
        unit=view.unit,
        os_user=view.os_user or "",
        enabled=view.enabled,
        roles=sorted(view.roles),
        created_at_ms=view.created_at_ms,
    )


def token_to_proto(view: TokenView) -> pb.Token:
    return pb.Token(
        token_id=view.token_id,
        name=view.name,
        label=view.label,
        created_at_ms=view.created_at_ms,
        expires_at_ms=view.expires_at_ms,
        revoked_at_ms=view.revoked_at_ms or 0,
    )
