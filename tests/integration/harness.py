# SPDX-License-Identifier: Apache-2.0
"""Real nodes in the test process: each with its own keys, certificate, database and ports."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import tomli_w
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from node.cli.processes import free_port
from node.config import NodeConfig, init_node
from node.crypto.keys import AgencyKeys
from node.members import build_members_file
from node.runtime import RunningNode, start_node
from node.storage import repo
from node.storage.engine import transaction

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


def set_endpoint(configs: dict[str, NodeConfig], agency_id: str, endpoint: str) -> None:
    """Make every node dial ``agency_id`` at ``endpoint`` (a proxy, a black hole …)."""
    for config in configs.values():
        document = tomllib.loads(config.members_file.read_text())
        for member in document["member"]:
            if member["agency_id"] == agency_id:
                member["endpoint"] = endpoint
        config.members_file.write_text(tomli_w.dumps(document, multiline_strings=True))


def set_members_version(config: NodeConfig, version: int) -> None:
    document = tomllib.loads(config.members_file.read_text())
    document["version"] = version
    config.members_file.write_text(tomli_w.dumps(document, multiline_strings=True))


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
            return repo.count_rows(session)

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


def make_configs(tmp_path: Path, database_urls: Callable[[str], str]) -> dict[str, NodeConfig]:
    """Initialise every agency in ``tmp_path`` and give them all one members file."""
    configs = {}
    for agency_id, country, role in AGENCIES:
        config = init_node(
            directory=tmp_path / agency_id,
            agency_id=agency_id,
            country=country,
            roles=[role],
            listen=f"127.0.0.1:{free_port()}",
        )
        configs[agency_id] = fast(replace(config, database_url=database_urls(agency_id)))
    cards = [(tmp_path / agency_id / "member.toml").read_text() for agency_id, _, _ in AGENCIES]
    members = build_members_file(cards)
    for config in configs.values():
        config.members_file.write_text(members)
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
