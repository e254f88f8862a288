# SPDX-License-Identifier: Apache-2.0
"""OpenTelemetry tracing for a node, and W3C trace context across the gRPC hop.

Each node owns its own ``TracerProvider`` (no global provider), so several nodes can run in
one process and tests can capture every span a node makes. Span names and attributes carry
ids, types, agency ids and outcomes only: never form contents or personal data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.util.types import AttributeValue

from node.errors import ConfigError

EXPORTERS = ("none", "console", "otlp")
TRACER_NAME = "comity.node"


def make_tracer_provider(
    *, agency_id: str, exporter: str, otlp_endpoint: str | None = None
) -> TracerProvider:
    """A tracer provider for one node with the exporter named in its configuration.

    Raises:
        ConfigError: an unknown exporter name.
    """
    provider = TracerProvider(
        resource=Resource.create({"service.name": "comity-node", "comity.agency": agency_id})
    )
    if exporter == "none":
        return provider
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        return provider
    if exporter == "otlp":
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(otlp_endpoint)))
        return provider
    raise ConfigError(f"telemetry exporter must be one of {', '.join(EXPORTERS)}")


def _otlp_exporter(endpoint: str | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter,  # imported here: it loads its own gRPC stack, only when chosen
    )

    return OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()


def inject_metadata() -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying the current W3C trace context (traceparent, tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())


def trace_carrier() -> str:
    """The current trace context as text, to store with work that continues elsewhere."""
    return json.dumps(dict(inject_metadata()), separators=(",", ":"))


def context_from_carrier(carrier: str | None) -> otel_context.Context:
    """The trace context stored by :func:`trace_carrier` (empty if none or unreadable)."""
    try:
        stored = json.loads(carrier) if carrier else {}
    except ValueError:
        stored = {}
    return extract_context(stored.items() if isinstance(stored, dict) else ())


def extract_context(metadata: Iterable[tuple[str, str | bytes]] | None) -> otel_context.Context:
    """The trace context a caller sent in its gRPC metadata (empty if none)."""
    carrier = {
        key: value
        for key, value in (metadata or ())
        if isinstance(value, str) and key in ("traceparent", "tracestate")
    }
    return propagate.extract(carrier)


def span_attributes(**values: AttributeValue) -> dict[str, AttributeValue]:
    """Attributes under the ``comity.`` namespace; only ids, types and outcomes go here."""
    return {f"comity.{key}": value for key, value in values.items()}


__all__ = [
    "EXPORTERS",
    "TRACER_NAME",
    "extract_context",
    "inject_metadata",
    "make_tracer_provider",
    "span_attributes",
    "trace",
]
