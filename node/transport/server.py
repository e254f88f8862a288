# SPDX-License-Identifier: Apache-2.0
"""The two gRPC servers of a node: Federation over mutual TLS, Local over a Unix socket.

Both also serve the standard health checking and reflection services. They are separate
servers so that a peer can never reach the Local service and a local user never needs a
federation certificate.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import Tracer

from node.config import NodeConfig
from node.errors import ConfigError
from node.gen.comity.v1 import (
    audit_pb2_grpc,
    directory_pb2_grpc,
    evidence_pb2_grpc,
    groups_pb2_grpc,
    indicators_pb2_grpc,
    local_credentials_pb2_grpc,
    local_pb2,
    local_pb2_grpc,
    local_people_pb2_grpc,
)
from node.services.approvals import ApprovalService
from node.services.credentials import CredentialService, credential_key
from node.services.oidc import OidcService
from node.services.people import PeopleService
from node.storage.database import Database
from node.timeutil import now_ms
from node.transport.approvals_servicer import SERVICE_NAME as APPROVALS_SERVICE
from node.transport.approvals_servicer import ApprovalGate, ApprovalsServicer
from node.transport.audit_servicer import SERVICE_NAME as AUDIT_SERVICE
from node.transport.audit_servicer import WITNESS_SERVICE_NAME as WITNESS_SERVICE
from node.transport.audit_servicer import AuditServicer, WitnessServicer
from node.transport.channel_options import LOCAL_OPTIONS, SERVER_OPTIONS
from node.transport.credentials_servicer import SERVICE_NAME as CREDENTIALS_SERVICE
from node.transport.credentials_servicer import CredentialsServicer
from node.transport.directory_servicer import SERVICE_NAME as DIRECTORY_SERVICE
from node.transport.directory_servicer import DirectoryServicer
from node.transport.evidence_servicer import SERVICE_NAME as EVIDENCE_SERVICE
from node.transport.evidence_servicer import EvidenceServicer
from node.transport.federation_servicer import SERVICE_NAME as FEDERATION_SERVICE
from node.transport.federation_servicer import FederationServicer
from node.transport.groups_servicer import SERVICE_NAME as GROUPS_SERVICE
from node.transport.groups_servicer import GroupsServicer
from node.transport.identity import LoginTickets, identity_socket, serve_identity
from node.transport.indicators_servicer import SERVICE_NAME as INDICATORS_SERVICE
from node.transport.indicators_servicer import IndicatorsServicer
from node.transport.interceptors import ComityServerInterceptor
from node.transport.local_auth import LocalAuthInterceptor, Refused
from node.transport.local_servicer import LocalServicer
from node.transport.oidc_client import OidcHttpClient
from node.transport.people_servicer import SERVICE_NAME as PEOPLE_SERVICE
from node.transport.people_servicer import PeopleServicer

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

    def local_credentials(self) -> grpc.ServerCredentials:
        """The node's certificate without client certificates: the local API over TLS, where
        callers sign in with service tokens."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate)], require_client_auth=False
        )


@dataclass(frozen=True, kw_only=True)
class LocalAccess:
    """Who may reach the local socket, and how callers are told apart once there."""

    socket: Path
    people: PeopleService
    approvals: ApprovalService
    """Holds the actions the node's policy reserves for a supervisor's approval."""
    credentials: CredentialService
    oidc: OidcService | None = None
    """Sign-in through the agency's identity provider, when ``[oidc]`` configures one."""
    group: str | None = None
    """A group of the machine whose members may connect (the socket becomes 0660)."""
    tls_listen: str | None = None
    """Also serve the local API over TLS here (the node's certificate; tokens only)."""
    on_refused: Refused | None = None
    tickets: LoginTickets = field(default_factory=LoginTickets)

    @property
    def socket_mode(self) -> int:
        return 0o660 if self.group else 0o600


def local_access(
    config: NodeConfig,
    people: PeopleService,
    database: Database,
    *,
    approvals: ApprovalService,
    on_refused: Refused | None = None,
) -> LocalAccess:
    """Who may reach the local socket and how they sign in, as ``config`` says."""
    credentials = CredentialService(
        database=database,
        clock=now_ms,
        seal_key=credential_key(config.keys_dir),
        issuer=f"Comity {config.agency_id}",
    )
    oidc = None
    if config.oidc is not None:
        oidc = OidcService(
            database=database,
            credentials=credentials,
            config=config.oidc,
            provider=OidcHttpClient(config=config.oidc),
            clock=now_ms,
        )
    return LocalAccess(
        socket=config.local_socket,
        people=people,
        credentials=credentials,
        oidc=oidc,
        approvals=approvals,
        group=config.local_group,
        tls_listen=config.local_tls_listen,
        on_refused=on_refused,
    )


@dataclass(kw_only=True)
class NodeServers:
    federation: grpc.aio.Server
    local: grpc.aio.Server
    federation_port: int
    federation_health: health_aio.HealthServicer
    local_health: health_aio.HealthServicer
    access: LocalAccess
    local_tls_port: int | None = None
    _identity: asyncio.Server | None = None

    async def start(self) -> None:
        await self.federation.start()
        await self.local.start()
        self._identity = await serve_identity(
            identity_socket(self.access.socket),
            self.access.tickets,
            mode=self.access.socket_mode,
        )
        _share_with_group(identity_socket(self.access.socket), self.access.group)
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
        if self._identity is not None:
            self._identity.close()
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
    access: LocalAccess,
    listen: str,
    tls: TlsIdentity,
    max_concurrent_rpcs: int,
    tracer: Tracer,
    share_port: bool = False,
) -> NodeServers:
    """Create (not start) both servers, each with the :class:`ComityServerInterceptor`.

    Raises:
        ConfigError: the federation address cannot be bound or the socket path is unusable.
    """
    interceptor = ComityServerInterceptor(tracer=tracer)
    fed_server, fed_health = _server(
        interceptor,
        max_concurrent_rpcs,
        FEDERATION_SERVICE,
        AUDIT_SERVICE,
        WITNESS_SERVICE,
        DIRECTORY_SERVICE,
        EVIDENCE_SERVICE,
        INDICATORS_SERVICE,
        GROUPS_SERVICE,
        share_port=share_port,
    )
    fed_server.add_generic_rpc_handlers((federation.handler(),))
    audit_pb2_grpc.add_AuditServicer_to_server(audit, fed_server)
    audit_pb2_grpc.add_WitnessServicer_to_server(witness, fed_server)
    directory_pb2_grpc.add_DirectoryServicer_to_server(directory, fed_server)
    evidence_pb2_grpc.add_EvidenceServicer_to_server(evidence, fed_server)
    indicators_pb2_grpc.add_IndicatorsServicer_to_server(indicators, fed_server)
    groups_pb2_grpc.add_GroupsServicer_to_server(groups, fed_server)
    port = _add_port(fed_server, listen, tls.server_credentials())
    local_server, local_health = _local_server(interceptor, max_concurrent_rpcs, local, access)
    local_tls_port = None
    if access.tls_listen:
        local_tls_port = _add_port(local_server, access.tls_listen, tls.local_credentials())
    return NodeServers(
        federation=fed_server,
        local=local_server,
        federation_port=port,
        federation_health=fed_health,
        local_health=local_health,
        access=access,
        local_tls_port=local_tls_port,
    )


def _add_port(server: grpc.aio.Server, listen: str, credentials: grpc.ServerCredentials) -> int:
    try:
        return server.add_secure_port(listen, credentials)
    except RuntimeError as e:
        raise ConfigError(f"cannot listen on {listen}: {e}") from e


def _local_server(
    interceptor: ComityServerInterceptor,
    max_concurrent_rpcs: int,
    local: LocalServicer,
    access: LocalAccess,
) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    """The server of the local socket: every call signed in as a user first."""
    server, health = _server(
        interceptor,
        max_concurrent_rpcs,
        LOCAL_SERVICE,
        PEOPLE_SERVICE,
        APPROVALS_SERVICE,
        CREDENTIALS_SERVICE,
        overrides=dict(LOCAL_OPTIONS),
        local=(
            LocalAuthInterceptor(
                people=access.people,
                credentials=access.credentials,
                tickets=access.tickets,
                on_refused=access.on_refused,
            ),
            ApprovalGate(access.approvals),  # inside sign-in: it knows who is asking
        ),
    )
    local_pb2_grpc.add_LocalServicer_to_server(local, server)
    local_people_pb2_grpc.add_PeopleServicer_to_server(PeopleServicer(access.people), server)
    local_people_pb2_grpc.add_ApprovalsServicer_to_server(
        ApprovalsServicer(approvals=access.approvals, local=local), server
    )
    local_credentials_pb2_grpc.add_CredentialsServicer_to_server(
        CredentialsServicer(access.credentials, access.oidc), server
    )
    _bind_socket(server, access)
    return server, health


def _server(
    interceptor: ComityServerInterceptor,
    max_concurrent_rpcs: int,
    *services: str,
    share_port: bool = False,
    overrides: dict[str, int] | None = None,
    local: tuple[grpc.aio.ServerInterceptor, ...] = (),
) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    # Without share_port a second process on the same port fails to start instead of
    # silently taking half of the connections.
    chosen = dict(SERVER_OPTIONS) | (overrides or {})
    options = (*chosen.items(), ("grpc.so_reuseport", 1 if share_port else 0))
    server = grpc.aio.server(
        options=options,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        # The first interceptor wraps the others: it maps their refusals to statuses too.
        interceptors=(interceptor, *local),
    )
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    health_service = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection(
        (*services, health_service, reflection.SERVICE_NAME), server
    )
    return server, health


def _bind_socket(server: grpc.aio.Server, access: LocalAccess) -> None:
    path = access.socket
    # Unix socket paths are limited to ~107 bytes; say so instead of failing obscurely.
    if len(str(path)) > 100:
        raise ConfigError(f"local socket path is too long (max 100 characters): {path}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        path.unlink()  # left behind by a node that did not shut down cleanly
    # The socket's permissions decide who may reach the Local service at all: the node's
    # login, and the members of local.group if one is set; sign-in then tells them apart.
    old_umask = os.umask(0o777 & ~access.socket_mode)
    try:
        server.add_insecure_port(f"unix:{path}")
    except RuntimeError as e:
        raise ConfigError(f"cannot bind the local socket {path}: {e}") from e
    finally:
        os.umask(old_umask)
    if access.group:
        path.parent.chmod(0o750)
        _share_with_group(path.parent, access.group)
        _share_with_group(path, access.group)


def _share_with_group(path: Path, group: str | None) -> None:
    if group is None:
        return
    try:
        shutil.chown(path, group=group)
    except (LookupError, PermissionError) as e:
        raise ConfigError(f"cannot give {path} to group {group!r} (local.group): {e}") from e
