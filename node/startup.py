# SPDX-License-Identifier: Apache-2.0
"""What a node checks before it serves: its TLS material reads, and the directory it trusts
lists keys it holds."""

from __future__ import annotations

from node.config import NodeConfig
from node.crypto.keys import AgencyKeys
from node.errors import ConfigError
from node.federation.trusted import FederationDirectory
from node.tls import read_private_key


def check_listed(config: NodeConfig, directory: FederationDirectory, keys: AgencyKeys) -> None:
    """Refuse to start unless the directory lists this agency with a signing and an
    encryption key held in its key directory.

    Raises:
        ConfigError: naming what is missing.
    """
    where = f"directory version {directory.version}"
    member = directory.find(config.agency_id)
    if member is None:
        raise ConfigError(
            f"{where} does not list {config.agency_id} with active keys; ask the secretariat "
            "to add this node's member card"
        )
    if not set(member.signing_keys) & set(keys.signing_keys()):
        raise ConfigError(
            f"{where}: none of the signing keys in {config.keys_dir} is listed as active "
            f"for {config.agency_id}"
        )
    if not set(member.encryption_keys) & set(keys.encryption_keys()):
        raise ConfigError(
            f"{where}: none of the encryption keys in {config.keys_dir} is listed as active "
            f"for {config.agency_id}"
        )


def read_tls(config: NodeConfig) -> tuple[bytes, bytes]:
    """The node's TLS certificate and private key.

    Raises:
        ConfigError: either cannot be read.
    """
    try:
        return config.tls_certificate.read_bytes(), read_private_key(config.tls_private_key)
    except OSError as e:
        raise ConfigError(f"cannot read TLS material: {e.strerror}: {e.filename}") from e
