# SPDX-License-Identifier: Apache-2.0
"""Exporter selection and W3C trace context in gRPC metadata."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from node.errors import ConfigError
from node.telemetry import extract_context, inject_metadata, make_tracer_provider


@pytest.mark.parametrize("exporter", ["none", "console", "otlp"])
def test_every_configured_exporter_builds(exporter: str) -> None:
    provider = make_tracer_provider(
        agency_id="aa-unit", exporter=exporter, otlp_endpoint="http://127.0.0.1:4317"
    )
    assert provider.resource.attributes["comity.agency"] == "aa-unit"
    provider.shutdown()


def test_unknown_exporter_is_refused() -> None:
    with pytest.raises(ConfigError, match="none, console, otlp"):
        make_tracer_provider(agency_id="aa-unit", exporter="zipkin")


def test_trace_context_round_trips_through_metadata() -> None:
    provider = make_tracer_provider(agency_id="aa-unit", exporter="none")
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("client") as client:
        metadata = inject_metadata()
    assert (
        dict(metadata)["traceparent"].split("-")[1] == f"{client.get_span_context().trace_id:032x}"
    )
    with tracer.start_as_current_span("server", context=extract_context(metadata)) as server:
        assert server.get_span_context().trace_id == client.get_span_context().trace_id
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert extract_context(None) == extract_context(())
    provider.shutdown()
