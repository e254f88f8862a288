# SPDX-License-Identifier: Apache-2.0
"""Real nodes in the test process: each with its own keys, certificate, database and ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from nacl.signing import SigningKey
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from node.audit.leaf import OVERLAP_ANSWERED, Leaf, Opening
from node.config import USER_ROLES, NodeConfig, init_node
from node.crypto.keys import AgencyKeys, load_signing_key
from node.federation import ceremony
from node.federation.document import SignedDirectory, parse_directory
from node.federation.setup import ROOT_COUNT, ROOT_THRESHOLD, federate, root_key_path
from node.runtime import RunningNode, start_node
from node.storage import audit_repo
from node.storage.engine import transaction
from node.timeutil import now_ms
from tests import dbutil
from tests.ports import free_port

AGENCIES = (
    ("aa-cyber-unit", "EE", "requesting"),
    ("bb-central-authority", "PT", "central_authority"),
    ("cc-central-authority", "IE", "central_authority"),
)


def fast(config: NodeConfig) -> NodeConfig:
    """Retries in tenths of a second, so tests that wait for them stay short."""
    return replace(
        config,
        retry_base_s=0.05,
        retry_cap_s=0.5,
        poll_interval_s=0.1,
        file_wait_s=5.0,
        delivery_timeout_s=2.0,
    )


def root_keys(config: NodeConfig) -> list[SigningKey]:
    """The test federation's root keys, kept beside the nodes' directories."""
    roots = config.config_path.parent.parent / "roots"
    return [load_signing_key(root_key_path(roots, i)) for i in range(ROOT_COUNT)]


def current_directory(config: NodeConfig) -> SignedDirectory:
    return parse_directory(config.directory_file.read_bytes())


def publish(
    configs: Iterable[NodeConfig], document: SignedDirectory, *, signers: int = ROOT_THRESHOLD
) -> SignedDirectory:
    """Sign ``document`` with the first ``signers`` root keys; write it as each node's file."""
    configs = list(configs)
    for key in root_keys(configs[0])[:signers]:
        document = ceremony.sign(document, key)
    for config in configs:
        config.directory_file.write_bytes(document.to_json())
    return document


def set_endpoint(configs: dict[str, NodeConfig], agency_id: str, endpoint: str) -> None:
    """Make every node dial ``agency_id`` at ``endpoint`` (a proxy, a black hole …)."""
    first = next(iter(configs.values()))
    draft = ceremony.set_endpoint(
        current_directory(first), agency_id, endpoint=endpoint, now_ms=now_ms()
    )
    publish(configs.values(), draft)


def newer_directory_for(config: NodeConfig) -> SignedDirectory:
    """Give one node's file the next directory version (the others keep theirs)."""
    draft = ceremony.renew(current_directory(config), now_ms=now_ms(), valid_days=365)
    return publish([config], draft)


@dataclass
class Federation:
    """Started nodes by agency id, their configs and keys, and every span they made."""

    nodes: dict[str, RunningNode]
    configs: dict[str, NodeConfig]
    spans: InMemorySpanExporter

    def keys(self, agency_id: str) -> AgencyKeys:
        return AgencyKeys.load(self.configs[agency_id].keys_dir)

    def tls(self, agency_id: str) -> tuple[bytes, bytes]:
        config = self.configs[agency_id]
        return config.tls_certificate.read_bytes(), config.tls_private_key.read_bytes()

    def rows(self, agency_id: str) -> dict[str, int]:
        with transaction(self.nodes[agency_id].engine) as session:
            return dbutil.count_rows(session)

    def channel(self, *, client: str | None, server: str) -> grpc.aio.Channel:
        """A mutual-TLS channel to ``server``'s node presenting ``client``'s certificate."""
        server_config = self.configs[server]
        client_cert = client_key = None
        if client is not None:
            client_cert, client_key = self.tls(client)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=server_config.tls_certificate.read_bytes(),
            private_key=client_key,
            certificate_chain=client_cert,
        )
        return grpc.aio.secure_channel(
            f"127.0.0.1:{self.nodes[server].federation_port}",
            credentials,
            options=(("grpc.ssl_target_name_override", server),),
        )


def make_configs(
    tmp_path: Path,
    database_urls: Callable[[str], str],
    *,
    secretariat: str | None = None,
    oversight: str | None = None,
) -> dict[str, NodeConfig]:
    """Initialise every agency in ``tmp_path`` and give them all one signed directory;
    ``secretariat`` also gets that role (the others fetch new directories from it), and
    ``oversight`` the oversight body's."""
    configs = {}
    for agency_id, country, role in AGENCIES:
        extra = {secretariat: "secretariat", oversight: "oversight"}.get(agency_id)
        config = init_node(
            directory=tmp_path / agency_id,
            agency_id=agency_id,
            country=country,
            roles=[role, extra] if extra else [role],
            listen=f"127.0.0.1:{free_port()}",
            admin_roles=USER_ROLES,
        )
        # No four-eyes policy unless a test asks for one (tests/people/test_approvals.py):
        # the other tests act as one login that holds every role. Tests count sets of a few
        # items; the smallest check a node answers by default (10 items) has its own tests in
        # test_overlap.py.
        configs[agency_id] = fast(
            replace(
                config,
                database_url=database_urls(agency_id),
                approvals_required=frozenset(),
                overlap_min_items=1,
            )
        )
    federate(list(configs.values()), roots_dir=tmp_path / "roots")
    return configs


async def start(config: NodeConfig, spans: InMemorySpanExporter) -> RunningNode:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return await start_node(config, tracer_provider=provider)


@asynccontextmanager
async def running_federation(configs: dict[str, NodeConfig]) -> AsyncIterator[Federation]:
    spans = InMemorySpanExporter()
    nodes: dict[str, RunningNode] = {}
    try:
        for agency_id, config in configs.items():
            nodes[agency_id] = await start(config, spans)
        yield Federation(nodes=nodes, configs=configs, spans=spans)
    finally:
        await asyncio.gather(*(node.stop() for node in nodes.values()))


def answered_checks(fed: Federation, agency: str) -> dict[str, tuple[Leaf, list[Opening]]]:
    """The ``overlap.answered`` leaves of ``agency``'s log and their openings, by check id."""
    found = {}
    with transaction(fed.nodes[agency].engine) as session:
        for row in audit_repo.audit_leaves(session, start=0, end=audit_repo.audit_size(session)):
            leaf = Leaf.from_bytes(row.leaf)
            if leaf.public.event == OVERLAP_ANSWERED:
                openings = [
                    Opening(name=o.name, value=o.value, salt=o.salt)
                    for o in audit_repo.audit_openings(session, row.idx)
                ]
                found[leaf.public.exchange_id] = (leaf, openings)
    return found
