# SPDX-License-Identifier: Apache-2.0
"""Certificates made by `node init` work for mutual TLS with grpc.aio."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from nacl.signing import SigningKey

from node.crypto.keys import AgencyKeys
from node.errors import ConfigError
from node.federation import ceremony
from node.ids import AgencyId
from node.members import member_card
from node.tls import (
    certificate_agency,
    certificate_fingerprint,
    check_certificate_profile,
    generate_tls_identity,
    peer_certificate_fingerprint,
)
from tests.federation.build import NOW_MS, card_with_keys


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


def certificate_with(*extensions: x509.ExtensionType) -> bytes:
    """A self-signed certificate for aa-unit (common and DNS name) with ``extensions``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aa-unit")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("aa-unit")]), critical=False)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


CERTIFICATES_THAT_MAY_SIGN = {
    "a CA, as member certificates once were": (
        (x509.BasicConstraints(ca=True, path_length=0), key_usage(cert_sign=True)),
        "CA:TRUE",
    ),
    "not a CA, but allowed keyCertSign": (
        (x509.BasicConstraints(ca=False, path_length=None), key_usage(cert_sign=True)),
        "keyCertSign",
    ),
    "no key usage stated (any usage)": (
        (x509.BasicConstraints(ca=False, path_length=None),),
        "no keyUsage",
    ),
}


@pytest.mark.parametrize("case", list(CERTIFICATES_THAT_MAY_SIGN))
def test_a_certificate_that_may_sign_others_is_refused(case: str) -> None:
    extensions, named = CERTIFICATES_THAT_MAY_SIGN[case]
    with pytest.raises(ConfigError, match=named):
        check_certificate_profile(certificate_with(*extensions), "aa-unit")


def test_generated_certificates_are_end_entity_certificates() -> None:
    certificate, _ = generate_tls_identity(AgencyId("aa-unit"))
    parsed = x509.load_pem_x509_certificate(certificate)
    assert not parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not parsed.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    check_certificate_profile(certificate, "aa-unit")
    check_certificate_profile(
        certificate_with(
            x509.BasicConstraints(ca=False, path_length=None), key_usage(cert_sign=False)
        ),
        "aa-unit",
    )


def test_the_ceremony_refuses_a_card_whose_certificate_is_a_ca() -> None:
    keys = AgencyKeys.generate()
    ca = certificate_with(x509.BasicConstraints(ca=True, path_length=0), key_usage(cert_sign=True))
    good = card_with_keys("aa-unit", keys)
    directory = ceremony.new_directory(
        root_keys=[SigningKey.generate().verify_key.encode()],
        threshold=1,
        now_ms=NOW_MS,
        valid_days=30,
    )
    with pytest.raises(ConfigError, match="CA:TRUE"):
        ceremony.add_member(directory, replace(good, tls_certificate=ca), now_ms=NOW_MS)
    with pytest.raises(ConfigError, match="CA:TRUE"):
        member_card(
            agency_id="aa-unit",
            country="EE",
            roles=["central_authority"],
            endpoint="127.0.0.1:7401",
            keys=keys,
            tls_certificate=ca,
        )
