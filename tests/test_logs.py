# SPDX-License-Identifier: Apache-2.0
"""Log lines: one per record, text or JSON, with the trace context and only known fields."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from node.errors import ConfigError
from node.logs import FIELDS, log_ids, make_formatter


def record(
    message: str = "delivered message %s",
    *args: object,
    extra: dict[str, object] | None = None,
    exc_info: BaseException | None = None,
) -> logging.LogRecord:
    return logging.getLogger("node.services.delivery").makeRecord(
        "node.services.delivery",
        logging.INFO,
        __file__,
        1,
        message,
        args or ("m-1",),
        (type(exc_info), exc_info, exc_info.__traceback__) if exc_info else None,
        extra=extra,
    )


def json_line(made: logging.LogRecord) -> dict[str, object]:
    line = make_formatter("json", "aa-cyber-unit").format(made)
    assert "\n" not in line
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_a_json_line_has_the_fixed_fields_and_the_ids_it_was_given() -> None:
    fields = json_line(record(extra=log_ids(message_id="m-1", exchange_id="x-1", peer="bb")))
    assert fields["level"] == "INFO"
    assert fields["logger"] == "node.services.delivery"
    assert fields["message"] == "delivered message m-1"
    assert fields["agency_id"] == "aa-cyber-unit"
    assert str(fields["time"]).endswith("Z")
    assert (fields["message_id"], fields["exchange_id"], fields["peer"]) == ("m-1", "x-1", "bb")
    assert "trace_id" not in fields


def test_a_record_made_inside_a_span_carries_its_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("call") as span:
        fields = json_line(record())
    context = span.get_span_context()
    assert fields["trace_id"] == f"{context.trace_id:032x}"
    assert fields["span_id"] == f"{context.span_id:016x}"


def test_extra_values_outside_the_known_fields_are_not_written() -> None:
    fields = json_line(record(extra={"form": "V-2026-0142 home address"}))
    assert "form" not in fields
    assert "V-2026-0142" not in json.dumps(fields)


def test_log_ids_refuses_a_field_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="summary"):
        log_ids(summary="text")
    assert set(log_ids(message_id="m", peer=None)) == {"message_id"}
    assert "message_id" in FIELDS


def raise_with_personal_data() -> None:
    raise ValueError("Chirper:@Orbit_Watch_77\nsecond line")


def test_an_exception_is_one_field_naming_its_type_and_places_not_its_text() -> None:
    try:
        raise_with_personal_data()
    except ValueError as e:
        error = e
    fields = json_line(record(exc_info=error))
    summary = str(fields["exception"])
    assert summary.startswith("ValueError at tests/test_logs.py:")
    assert "in raise_with_personal_data" in summary
    assert "Orbit_Watch" not in summary


def test_a_text_line_stays_one_line_whatever_the_message_holds() -> None:
    try:
        raise_with_personal_data()
    except ValueError as e:
        error = e
    made = record("first\nsecond %s", "x", extra=log_ids(message_id="m-9"), exc_info=error)
    line = make_formatter("text", "aa-cyber-unit").format(made)
    assert "\n" not in line
    assert " INFO [aa-cyber-unit] node.services.delivery: first\\nsecond x" in line
    assert "message_id=m-9" in line
    assert "exception=ValueError at " in line
    assert "Orbit_Watch" not in line


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="text, json"):
        make_formatter("xml", "aa-cyber-unit")
