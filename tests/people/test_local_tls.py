# SPDX-License-Identifier: Apache-2.0
"""A case-management system on another host: the local API over TLS, with a service token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from node.gen.comity.v1 import local_people_pb2, local_people_pb2_grpc
from node.ids import AgencyId
from node.transport.identity import TICKET_METADATA, fetch_ticket
from node.transport.status import ERROR_TRAILER
from tests.integration.harness import Federation, make_configs, running_federation
from tests.people.conftest import Cli
from tests.ports import free_port

UNIT = AgencyId("aa-cyber-unit")


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    configs = make_configs(tmp_path, node_database_urls)
    configs[UNIT] = replace(configs[UNIT], local_tls_listen=f"127.0.0.1:{free_port()}")
    async with running_federation(configs) as federation:
        yield federation


def _tls_channel(fed: Federation) -> grpc.aio.Channel:
    config = fed.configs[UNIT]
    assert fed.nodes[UNIT].servers.local_tls_port is not None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=config.tls_certificate.read_bytes()
    )
    return grpc.aio.secure_channel(
        f"127.0.0.1:{fed.nodes[UNIT].servers.local_tls_port}",
        credentials,
        options=(("grpc.ssl_target_name_override", UNIT),),
    )


async def _who(channel: grpc.aio.Channel, *metadata: tuple[str, str]) -> local_people_pb2.User:
    stub = local_people_pb2_grpc.PeopleStub(channel)
    return await stub.WhoAmI(local_people_pb2.WhoAmIRequest(), metadata=metadata)


async def test_a_service_token_signs_in_over_tls_and_a_login_ticket_does_not(
    fed: Federation, cli: Cli
) -> None:
    assert (await cli(UNIT, "users", "add", "cms", "--unit", "Cyber Unit",
                      "--role", "investigator")).code == 0  # fmt: skip
    made = await cli(UNIT, "tokens", "create", "--user", "cms", "--label", "cms", "--json")
    token = json.loads(made.out)["secret"]
    ticket = await asyncio.to_thread(fetch_ticket, fed.configs[UNIT].local_socket)
    assert ticket is not None

    async with _tls_channel(fed) as channel:
        user = await _who(channel, ("authorization", f"Bearer {token}"))
        assert (user.name, user.signed_in_via) == ("cms", "token")
        for metadata in ((TICKET_METADATA, ticket),), ():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _who(channel, *metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert dict(refused.value.trailing_metadata() or ())[ERROR_TRAILER] == "not_signed_in"
