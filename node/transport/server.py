# SPDX-License-Identifier: Apache-2.0
"""The two gRPC servers of a node: Federation over mutual TLS, Local over a Unix socket.

Both serve the standard health checking service; only the Local server serves reflection, so
that the federation port describes nothing to whoever reaches it. They are separate servers so
that a peer can never reach the Local service and a local user never needs a federation
certificate.

The federation server admits every Comity call through a :class:`PeerGate` (a member listed
now, within its share of concurrent calls) and closes every connection after
``max_connection_age_s`` (plus a grace for the calls still running on it), so that a
connection outlives neither a directory change nor a certificate removed from the trust roots.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import Tracer

from node.errors import ConfigError
from node.gen.comity.v1 import (
    audit_pb2_grpc,
    directory_pb2_grpc,
    evidence_pb2_grpc,
    groups_pb2_grpc,
    indicators_pb2_grpc,
    local_pb2,
    local_pb2_grpc,
)
from node.transport.audit_servicer import AuditServicer, WitnessServicer
from node.transport.channel_options import LOCAL_OPTIONS, SERVER_OPTIONS
from node.transport.directory_servicer import DirectoryServicer
from node.transport.evidence_servicer import EvidenceServicer
from node.transport.federation_servicer import SERVICE_NAME as FEDERATION_SERVICE
from node.transport.federation_servicer import FederationServicer
from node.transport.groups_servicer import GroupsServicer
from node.transport.indicators_servicer import IndicatorsServicer
from node.transport.interceptors import ComityServerInterceptor
from node.transport.local_servicer import LocalServicer
from node.transport.peer_gate import PeerGate

LOCAL_SERVICE = local_pb2.DESCRIPTOR.services_by_name["Local"].full_name


@dataclass(frozen=True, kw_only=True)
class TlsIdentity:
    certificate: bytes
    private_key: bytes
    trust_roots: Callable[[], bytes]
    """PEM certificates of every member of the trusted directory: the only clients the
    handshake accepts. Asked at every new connection, so a directory change applies at once."""

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials that re-read the trust roots whenever the directory changes them."""
        current = self.trust_roots()

        def configuration(roots: bytes) -> grpc.ServerCertificateConfiguration:
            return grpc.ssl_server_certificate_configuration(
                [(self.private_key, self.certificate)], root_certificates=roots
            )

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            nonlocal current
            roots = self.trust_roots()
            if roots == current:
                return None  # unchanged: gRPC keeps the configuration it has
            current = roots
            return configuration(roots)

        return grpc.dynamic_ssl_server_credentials(
            configuration(current),
            fetch,  # type: ignore[arg-type]  # gRPC documents None as "no change"
            require_client_authentication=True,
        )


@dataclass(frozen=True, kw_only=True)
class FederationLimits:
    """What one connection and one member may take of the federation server."""

    max_concurrent_rpcs: int
    """Calls at once over all connections (the Local server has as many of its own)."""
    max_connection_age_s: float
    """A connection is closed this long after it opened (gRPC adds up to 10 % jitter)..."""
    max_connection_age_grace_s: float
    """... once the calls still running on it have had this long to finish."""

    def server_options(self) -> dict[str, int]:
        return {
            "grpc.max_connection_age_ms": int(self.max_connection_age_s * 1000),
            "grpc.max_connection_age_grace_ms": int(self.max_connection_age_grace_s * 1000),
        }


@dataclass(frozen=True, kw_only=True)
class NodeServers:
    federation: grpc.aio.Server
    local: grpc.aio.Server
    federation_port: int
    federation_health: health_aio.HealthServicer
    local_health: health_aio.HealthServicer

    async def start(self) -> None:
        await self.federation.start()
        await self.local.start()
        for health, service in (
            (self.federation_health, FEDERATION_SERVICE),
            (self.local_health, LOCAL_SERVICE),
        ):
            await health.set(service, health_pb2.HealthCheckResponse.SERVING)
            await health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, stop accepting calls, let in-flight calls finish."""
        for health in (self.federation_health, self.local_health):
            await health.enter_graceful_shutdown()
        await self.federation.stop(grace_s)
        await self.local.stop(grace_s)


def build_servers(
    *,
    federation: FederationServicer,
    audit: AuditServicer,
    witness: WitnessServicer,
    directory: DirectoryServicer,
    evidence: EvidenceServicer,
    indicators: IndicatorsServicer,
    groups: GroupsServicer,
    local: LocalServicer,
    listen: str,
    local_socket: Path,
    tls: TlsIdentity,
    gate: PeerGate,
    limits: FederationLimits,
    tracer: Tracer,
    share_port: bool = False,
) -> NodeServers:
    """Create (not start) both servers, each with a :class:`ComityServerInterceptor`, the
    federation server's admitting its callers through ``gate``.

    Raises:
        ConfigError: the federation address cannot be bound or the socket path is unusable.
    """
    fed_server, fed_health = _server(
        ComityServerInterceptor(tracer=tracer, gate=gate),
        limits.max_concurrent_rpcs,
        share_port=share_port,
        overrides=limits.server_options(),
    )
    fed_server.add_generic_rpc_handlers((federation.handler(),))
    audit_pb2_grpc.add_AuditServicer_to_server(audit, fed_server)
    audit_pb2_grpc.add_WitnessServicer_to_server(witness, fed_server)
    directory_pb2_grpc.add_DirectoryServicer_to_server(directory, fed_server)
    evidence_pb2_grpc.add_EvidenceServicer_to_server(evidence, fed_server)
    indicators_pb2_grpc.add_IndicatorsServicer_to_server(indicators, fed_server)
    groups_pb2_grpc.add_GroupsServicer_to_server(groups, fed_server)
    try:
        port = fed_server.add_secure_port(listen, tls.server_credentials())
    except RuntimeError as e:
        raise ConfigError(f"cannot listen on {listen}: {e}") from e
    local_server, local_health = _server(
        ComityServerInterceptor(tracer=tracer),
        limits.max_concurrent_rpcs,
        overrides=dict(LOCAL_OPTIONS),
    )
    _reflect(local_server, LOCAL_SERVICE)
    local_pb2_grpc.add_LocalServicer_to_server(local, local_server)
    _bind_socket(local_server, local_socket)
    return NodeServers(
        federation=fed_server,
        local=local_server,
        federation_port=port,
        federation_health=fed_health,
        local_health=local_health,
    )


def _server(
    interceptor: ComityServerInterceptor,
    max_concurrent_rpcs: int,
    *,
    share_port: bool = False,
    overrides: dict[str, int] | None = None,
) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    # Without share_port a second process on the same port fails to start instead of
    # silently taking half of the connections.
    chosen = dict(SERVER_OPTIONS) | (overrides or {})
    options = (*chosen.items(), ("grpc.so_reuseport", 1 if share_port else 0))
    server = grpc.aio.server(
        options=options,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        interceptors=(interceptor,),
    )
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    return server, health


def _reflect(server: grpc.aio.Server, *services: str) -> None:
    health_service = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection(
        (*services, health_service, reflection.SERVICE_NAME), server
    )


def _bind_socket(server: grpc.aio.Server, path: Path) -> None:
    # Unix socket paths are limited to ~107 bytes; say so instead of failing obscurely.
    if len(str(path)) > 100:
        raise ConfigError(f"local socket path is too long (max 100 characters): {path}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        path.unlink()  # left behind by a node that did not shut down cleanly
    # The socket's permissions decide who may use the Local service: the node's user only.
    old_umask = os.umask(0o177)
    try:
        server.add_insecure_port(f"unix:{path}")
    except RuntimeError as e:
        raise ConfigError(f"cannot bind the local socket {path}: {e}") from e
    finally:
        os.umask(old_umask)
