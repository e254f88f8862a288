# SPDX-License-Identifier: Apache-2.0
"""TLS material for mutual TLS between nodes.

Each agency's node has a self-signed ECDSA P-256 end-entity certificate naming its agency id.
The federation membership lists every certificate; a node trusts exactly those, so a
certificate is pinned by being listed, not by a certificate authority:

- the certificates are the handshake's trust roots, and each is ``CA:FALSE`` without
  ``keyCertSign``, so a member's key cannot issue a certificate the handshake accepts
  (BoringSSL accepts a self-signed end-entity certificate as a root for exactly itself, and
  refuses to chain through one without ``keyCertSign``);
- the federation server then checks, on every call, that the SHA-256 fingerprint of the
  presented certificate is one the directory lists (node/transport/peer_gate.py), so even a
  directory that still lists an old certificate able to sign others admits only the exact
  certificates it lists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.errors import ConfigError
from node.ids import AgencyId

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")

_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


def _san(agency_id: str, hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(agency_id)]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def generate_tls_identity(
    agency_id: AgencyId, *, hosts: Sequence[str] = DEFAULT_HOSTS, valid_days: int = 825
) -> tuple[bytes, bytes]:
    """A self-signed end-entity certificate and its private key (both PEM) for ``agency_id``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agency_id)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(_san(agency_id, hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def read_private_key(path: Path) -> bytes:
    """The node's TLS private key (PEM), refused when other users may read it.

    Raises:
        ConfigError: unreadable, or accessible by group or others.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read TLS private key {path}: {e.strerror}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"TLS private key {path} is accessible by other users; chmod 600 it")
    return data


def _load(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except (ValueError, x509.InvalidVersion) as e:
        raise ConfigError("not a PEM X.509 certificate") from e


def certificate_fingerprint(pem: bytes) -> str:
    """``sha256:`` and the hex SHA-256 of the DER certificate.

    Raises:
        ConfigError: not a PEM certificate.
    """
    der = _load(pem).public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def certificate_agency(pem: bytes) -> str:
    """The certificate's common name: the agency id it was made for.

    Raises:
        ConfigError: not a PEM certificate, or without a common name.
    """
    try:
        # The certificate is parsed lazily: a malformed subject surfaces only here, as a
        # ValueError, or a TypeError from cryptography's checks of each attribute.
        names = _load(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (ValueError, TypeError) as e:
        raise ConfigError("certificate subject is not a valid X.509 name") from e
    if not names:
        raise ConfigError("certificate has no common name")
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


def check_certificate_profile(pem: bytes, agency_id: str) -> None:
    """The certificate names ``agency_id`` and cannot issue other certificates.

    Peers dial a node by its agency id and check the server certificate's DNS names against
    it: a certificate without that name would be listed, and every delivery to it would fail.
    Every listed certificate is a trust root of every node's handshake: one that may sign
    certificates (``CA:TRUE``, or a key usage allowing ``keyCertSign`` or none stated) would
    let its holder mint certificates for anyone.

    Raises:
        ConfigError: not a PEM certificate, a name differs, or it may sign certificates,
            naming the field.
    """
    certificate = _load(pem)
    common_name = certificate_agency(pem)
    if common_name != agency_id:
        raise ConfigError(
            f"certificate is not issued to {agency_id}: its subject common name is {common_name!r}"
        )
    try:
        extensions = certificate.extensions
    except ValueError as e:  # parsed lazily: a duplicate or malformed extension shows here
        raise ConfigError("certificate extensions are not valid X.509") from e
    _check_dns_name(extensions, agency_id)
    _check_end_entity(extensions)


def _check_dns_name(extensions: x509.Extensions, agency_id: str) -> None:
    san = _extension(extensions, x509.SubjectAlternativeName)
    if san is None:
        raise ConfigError(f"certificate has no subjectAltName; it must hold DNS name {agency_id}")
    dns_names = san.get_values_for_type(x509.DNSName)
    if agency_id not in dns_names:
        raise ConfigError(
            f"certificate subjectAltName DNS names {sorted(dns_names)} do not include the "
            f"agency id {agency_id}"
        )


def _check_end_entity(extensions: x509.Extensions) -> None:
    constraints = _extension(extensions, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise ConfigError(
            "certificate is a CA (basicConstraints CA:TRUE); a member certificate must be an "
            "end-entity certificate (CA:FALSE)"
        )
    usage = _extension(extensions, x509.KeyUsage)
    if usage is None:
        raise ConfigError("certificate has no keyUsage; a member certificate states it")
    if usage.key_cert_sign or usage.crl_sign:
        raise ConfigError(
            "certificate keyUsage allows keyCertSign or cRLSign; a member certificate must not "
            "sign other certificates"
        )


def _extension(extensions: x509.Extensions, kind: type[_Extension]) -> _Extension | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def peer_certificate_fingerprint(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """Fingerprint of the mutual-TLS client certificate in a gRPC auth context, if any."""
    pem = next(iter(auth_context.get("x509_pem_cert", ())), None)
    if pem is None:
        return None
    try:
        return certificate_fingerprint(pem)
    except ConfigError:
        return None
