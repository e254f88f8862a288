# SPDX-License-Identifier: Apache-2.0
"""The node's log lines: one line per event, as text or as JSON, with the trace context.

Every record names its time, level, logger, message and agency, the trace and span ids when it
was made inside a span, and the ids a call site passes with :func:`log_ids` (message,
exchange, peer, rpc …). Only the field names in :data:`FIELDS` are ever written, so a value
handed to a log call by mistake does not reach the log. An exception is written as its type
and the places it passed through, without its text: an exception's text may quote the input
that caused it (a form value, say).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from opentelemetry import trace

from node.errors import ConfigError

FORMATS = ("text", "json")
FIELDS = (
    "message_id",
    "exchange_id",
    "peer",
    "rpc",
    "grpc_status",
    "error_code",
    "duration_ms",
)
"""What a call site may add to a record, beside the fields every record has."""
QUIET_LOGGERS = ("grpc",)
"""Libraries whose INFO lines describe their own internals: WARNING and above only."""
_STACK_FRAMES = 8


def log_ids(**values: str | float | None) -> dict[str, object]:
    """The ``extra`` of a log call: ids and outcomes by their :data:`FIELDS` name.

    Raises:
        ValueError: a name that is not in :data:`FIELDS` (a programming error).
    """
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a log field: {', '.join(sorted(unknown))}")
    return {key: value for key, value in values.items() if value is not None}


def record_fields(record: logging.LogRecord, agency_id: str) -> dict[str, Any]:
    """Everything one line says, in order: the fixed fields, then the trace, then the ids."""
    fields: dict[str, Any] = {
        "time": _instant(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "agency_id": agency_id,
    }
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = f"{span.trace_id:032x}"
        fields["span_id"] = f"{span.span_id:016x}"
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    if record.exc_info and record.exc_info[1] is not None:
        fields["exception"] = exception_summary(record.exc_info[1], record.exc_info[2])
    return fields


def exception_summary(error: BaseException, tb: TracebackType | None) -> str:
    """``TypeName at file:line in function < …``, innermost place first, without the text."""
    frames = traceback.extract_tb(tb)[-_STACK_FRAMES:]
    places = [f"{_short(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames)]
    name = type(error).__qualname__
    return f"{name} at {' < '.join(places)}" if places else name


def _short(path: str) -> str:
    """A source path from the ``node`` package on, or its last two parts elsewhere."""
    parts = path.replace("\\", "/").split("/")
    if "node" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("node") :])
    return "/".join(parts[-2:])


def _instant(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (newlines inside values are escaped by JSON itself)."""

    def __init__(self, agency_id: str) -> None:
        super().__init__()
        self._agency_id = agency_id

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            record_fields(record, self._agency_id), ensure_ascii=False, separators=(",", ":")
        )


class TextFormatter(logging.Formatter):
    """``TIME LEVEL [agency] logger: message key=value …`` on one line."""

    def __init__(self, agency_id: str) -> None:
        super().__init__()
        self._agency_id = agency_id

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record, self._agency_id)
        head = (
            f"{fields.pop('time')} {fields.pop('level')} [{fields.pop('agency_id')}] "
            f"{fields.pop('logger')}: {fields.pop('message')}"
        )
        tail = "".join(f" {key}={value}" for key, value in fields.items())
        return _one_line(head + tail)


def make_formatter(log_format: str, agency_id: str) -> logging.Formatter:
    """The formatter for ``logging.format``.

    Raises:
        ConfigError: an unknown format name.
    """
    if log_format == "json":
        return JsonFormatter(agency_id)
    if log_format == "text":
        return TextFormatter(agency_id)
    raise ConfigError(f"logging.format must be one of {', '.join(FORMATS)}")


def configure_logging(*, level: str, log_format: str, agency_id: str) -> None:
    """Send every record of this process to standard error, one line each, in ``log_format``.

    Raises:
        ConfigError: an unknown format name.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format, agency_id))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_level = max(logging.WARNING, logging.getLevelName(level))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet_level)
    logging.captureWarnings(capture=True)


__all__ = [
    "FIELDS",
    "FORMATS",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "log_ids",
    "make_formatter",
]
