# SPDX-License-Identifier: Apache-2.0
"""Traces cross the hop; no form value reaches a span or a log line."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from node.forms.registry import get_form_type, schemas_dir
from node.forms.validate import form_strings
from node.ids import AgencyId
from tests.integration.harness import Federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")


def span_text(span: ReadableSpan) -> str:
    parts = [span.name, str(span.status.description or "")]
    parts += [f"{k}={v!s}" for k, v in (span.attributes or {}).items()]
    for event in span.events:
        parts.append(event.name)
        parts += [f"{k}={v!s}" for k, v in (event.attributes or {}).items()]
    parts += [f"{k}={v!s}" for k, v in span.resource.attributes.items()]
    return "\n".join(parts)


def sensitive_values(form: bytes) -> list[str]:
    """Form values that are case content: not words the schema itself defines (enums, consts),
    and not so short that they would match by chance ("EE", "en")."""
    schema = get_form_type("preservation").schema_path.read_text()
    return [v for v in form_strings(form) if len(v) >= 6 and f'"{v}"' not in schema]


async def test_trace_crosses_the_hop_and_carries_no_form_value(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    form = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
    caplog.set_level(logging.DEBUG)
    filed = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=form
    )
    spans = fed.spans.get_finished_spans()
    sender_span = next(s for s in spans if s.name == "comity.file_request")
    server_span = next(s for s in spans if s.name.endswith("Federation/Deliver"))
    assert sender_span.context is not None
    assert server_span.context is not None
    assert server_span.context.trace_id == sender_span.context.trace_id
    assert server_span.parent is not None
    assert (sender_span.attributes or {})["comity.exchange_id"] == filed.request_id

    values = sensitive_values(filed.form_json)
    assert len(values) > 10  # the check below must have something to look for
    telemetry = "\n".join(span_text(s) for s in spans)
    logs = "\n".join(record.getMessage() for record in caplog.records)
    for value in values:
        assert value not in telemetry
        assert value not in logs
