# SPDX-License-Identifier: Apache-2.0
"""Every row of the permission table, through the real socket of a running node: each local
operation called by a user of each role, allowed exactly when the role carries a permission
the operation needs, refused with ``access_denied`` otherwise."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from node.gen.comity.v1 import local_credentials_pb2, local_pb2, local_people_pb2
from node.ids import AgencyId
from node.model.people import ROLE_PERMISSIONS, Permission, Role
from node.services.access import LOCAL_OPERATIONS
from node.transport.status import ERROR_TRAILER
from tests.integration.harness import Federation
from tests.people.conftest import Cli

UNIT = AgencyId("aa-cyber-unit")
SERVICES = (
    local_pb2.DESCRIPTOR.services_by_name["Local"],
    local_people_pb2.DESCRIPTOR.services_by_name["People"],
    local_people_pb2.DESCRIPTOR.services_by_name["Approvals"],
    local_credentials_pb2.DESCRIPTOR.services_by_name["Credentials"],
)


def _methods() -> dict[str, MethodDescriptor]:
    return {m.name: m for s in SERVICES for m in s.methods if m.name in LOCAL_OPERATIONS}


def _allowed(role: Role, operation: str) -> bool:
    return bool(LOCAL_OPERATIONS[operation] & (ROLE_PERMISSIONS[role] | {Permission.SELF}))


OWN_CREDENTIALS = frozenset({"SetPassword", "EnrolTotp"})
"""Allowed to every user for themselves alone (the service checks whose): asked for one's own."""


async def _code_of(
    channel: grpc.aio.Channel, method: MethodDescriptor, token: str, user: str
) -> str:
    """The comity-error code a call with an empty request ends with ("" if it succeeded)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    kind: Any = message_factory.GetMessageClass(method.input_type)
    request = kind(name=user) if method.name in OWN_CREDENTIALS else kind()
    decode: Any = message_factory.GetMessageClass(method.output_type).FromString
    metadata = (("authorization", f"Bearer {token}"),)
    try:
        if method.server_streaming:
            call = channel.unary_stream(
                path, request_serializer=_encode, response_deserializer=decode
            )
            async for _ in call(request, metadata=metadata, timeout=20):
                pass
        else:
            unary = channel.unary_unary(
                path, request_serializer=_encode, response_deserializer=decode
            )
            await unary(request, metadata=metadata, timeout=20)
    except grpc.aio.AioRpcError as e:
        return str(dict(e.trailing_metadata() or ()).get(ERROR_TRAILER, e.code().name))
    return ""


def _encode(message: Any) -> bytes:
    encoded: bytes = message.SerializeToString()
    return encoded


async def test_each_role_may_run_exactly_the_operations_its_permissions_allow(
    fed: Federation, cli: Cli
) -> None:
    tokens: dict[Role, str] = {}
    for role in Role:
        name = "as-" + role.value
        added = await cli(UNIT, "users", "add", name, "--unit", "Cyber Unit", "--role", role)
        assert added.code == 0, added.err
        made = await cli(UNIT, "tokens", "create", "--user", name, "--label", "t", "--json")
        tokens[role] = json.loads(made.out)["secret"]

    wrong: list[str] = []
    socket = fed.configs[UNIT].local_socket
    async with grpc.aio.insecure_channel(f"unix:{socket}") as channel:
        for operation, method in sorted(_methods().items()):
            if method.client_streaming:
                continue  # streams of uploads are covered by their own tests
            for role in Role:
                call = _code_of(channel, method, tokens[role], f"as-{role.value}")
                code = await asyncio.wait_for(call, 30)
                refused = code == "access_denied"
                if refused == _allowed(role, operation):
                    wrong.append(f"{operation} as {role}: {code or 'OK'}")
    assert wrong == [], "\n".join(wrong)
    assert set(_methods()) == set(LOCAL_OPERATIONS)  # every row was tried
