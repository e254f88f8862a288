# SPDX-License-Identifier: Apache-2.0
"""Certificates made by `node init` work for mutual TLS with grpc.aio."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from node.errors import ConfigError
from node.ids import AgencyId
from node.tls import (
    certificate_agency,
    certificate_fingerprint,
    check_certificate_profile,
    generate_tls_identity,
    peer_certificate_fingerprint,
)


def test_certificate_names_the_agency() -> None:
    certificate, key = generate_tls_identity(AgencyId("aa-unit"))
    assert certificate_agency(certificate) == "aa-unit"
    assert certificate_fingerprint(certificate).startswith("sha256:")
    assert b"PRIVATE KEY" in key
    with pytest.raises(ConfigError):
        certificate_fingerprint(b"junk")


def test_peer_fingerprint_is_absent_without_certificate() -> None:
    assert peer_certificate_fingerprint({}) is None
    assert peer_certificate_fingerprint({"x509_pem_cert": [b"junk"]}) is None


async def test_mutual_tls_accepts_listed_clients_only() -> None:
    server_cert, server_key = generate_tls_identity(AgencyId("bb-server"))
    client_cert, client_key = generate_tls_identity(AgencyId("aa-client"))
    stranger_cert, stranger_key = generate_tls_identity(AgencyId("aa-client"))
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    port = server.add_secure_port(
        "127.0.0.1:0",
        grpc.ssl_server_credentials(
            [(server_key, server_cert)], root_certificates=client_cert, require_client_auth=True
        ),
    )
    await server.start()
    try:
        assert await check(port, server_cert, client_cert, client_key) is None
        for cert, key in ((None, None), (stranger_cert, stranger_key)):
            assert await check(port, server_cert, cert, key) == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)


async def check(
    port: int, server_cert: bytes, cert: bytes | None, key: bytes | None
) -> grpc.StatusCode | None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=server_cert, private_key=key, certificate_chain=cert
    )
    options = (("grpc.ssl_target_name_override", "bb-server"),)
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials, options) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as e:
            return e.code()
    return None


def test_certificate_profile_names_the_field_that_differs() -> None:
    certificate, _ = generate_tls_identity(AgencyId("aa-unit"))
    check_certificate_profile(certificate, "aa-unit")
    with pytest.raises(ConfigError, match="common name is 'aa-unit'"):
        check_certificate_profile(certificate, "bb-other")
