# SPDX-License-Identifier: Apache-2.0
"""The JSON log lines of a real exchange between two node processes: their structure, their
ids and trace context, and that no value of the form reaches them."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.cli.processes import comity_command, spawn_node, wait_until_serving
from node.config import USER_ROLES, NodeConfig, init_node
from node.federation.setup import federate
from node.forms.registry import schemas_dir
from tests.ports import free_port

AGENCIES = (
    ("aa-cyber-unit", "EE", "requesting"),
    ("bb-central-authority", "PT", "central_authority"),
)
REQUIRED = ("time", "level", "logger", "message", "agency_id")
CODES = {"form_version", "language", "legal_basis", "country", "location_country", "type"}
"""Form keys whose values are vocabulary (codes a log may name), not case content."""


def json_node(tmp_path: Path, agency_id: str, country: str, role: str, url: str) -> NodeConfig:
    config = init_node(
        directory=tmp_path / agency_id,
        agency_id=agency_id,
        country=country,
        roles=[role],
        listen=f"127.0.0.1:{free_port()}",
        database_url=url,
        admin_roles=USER_ROLES,
    )
    text = config.config_path.read_text()
    assert '[logging]\nlevel = "INFO"\n' in text
    config.config_path.write_text(
        text.replace('level = "INFO"\n', 'level = "INFO"\nformat = "json"\n')
    )
    return config


def form_values(value: Any, key: str = "") -> Iterator[str]:
    """Every string of the form that is case content, as written and lower-cased."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from form_values(inner, name)
    elif isinstance(value, list):
        for inner in value:
            yield from form_values(inner, key)
    elif isinstance(value, str) and key not in CODES and len(value) >= 5:
        yield value
        yield value.lower()


def parse(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object: nothing else is printed
        assert isinstance(record, dict), line
        records.append(record)
    return records


@pytest.fixture
def nodes(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> Iterator[dict[str, NodeConfig]]:
    configs = {
        agency: json_node(tmp_path, agency, country, role, node_database_urls(agency))
        for agency, country, role in AGENCIES
    }
    federate(list(configs.values()), roots_dir=tmp_path / "roots")
    processes = [spawn_node(c, tmp_path / f"{a}.log") for a, c in configs.items()]
    try:
        for config, process in zip(configs.values(), processes, strict=True):
            wait_until_serving(config, process)
        yield configs
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.timeout(180)
def test_json_logs_of_an_exchange_carry_ids_and_trace_context_and_no_form_value(
    tmp_path: Path, nodes: dict[str, NodeConfig]
) -> None:
    form = json.loads((schemas_dir() / "examples" / "preservation.example.json").read_text())
    assert len(set(form_values(form))) > 20  # free text, indicators, pseudonyms, references
    form_file = tmp_path / "case.json"
    form_file.write_text(json.dumps(form))
    filed = subprocess.run(
        comity_command(
            "request", "file", "preservation", "--to", "bb-central-authority",
            "--form", str(form_file), "--config", str(nodes["aa-cyber-unit"].config_path),
            "--json",
        ),
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    detail = json.loads(filed.stdout)
    assert detail["state"] != "submitted", detail  # delivered: the receipt is back
    message_id, exchange_id = detail["receipt"]["message_id"], detail["request_id"]

    for process_log in ("aa-cyber-unit", "bb-central-authority"):
        records = parse(tmp_path / f"{process_log}.log")
        assert records
        for record in records:
            assert all(record.get(key) for key in REQUIRED), record
            assert record["agency_id"] == process_log
            assert not (record["logger"].startswith("grpc") and record["level"] == "INFO")
        text = (tmp_path / f"{process_log}.log").read_text(encoding="utf-8")
        leaked = sorted({value for value in form_values(form) if value in text})
        assert leaked == [], f"form values in the log of {process_log}: {leaked}"

    registered = [
        r for r in parse(tmp_path / "bb-central-authority.log") if r.get("message_id") == message_id
    ]
    assert registered, "the receiving node logs the message it registered"
    line = registered[0]
    assert line["exchange_id"] == exchange_id
    assert line["peer"] == "aa-cyber-unit"
    assert len(line["trace_id"]) == 32
    assert len(line["span_id"]) == 16
    deliver_calls = [
        r
        for r in parse(tmp_path / "bb-central-authority.log")
        if r.get("rpc", "").endswith("Federation/Deliver") and r.get("trace_id") == line["trace_id"]
    ]
    assert deliver_calls, "the access line of the call shares the trace of what it logged"
    assert deliver_calls[0]["grpc_status"] == "OK"
    delivered = [
        r for r in parse(tmp_path / "aa-cyber-unit.log") if r.get("message_id") == message_id
    ]
    assert delivered
    assert delivered[0]["peer"] == "bb-central-authority"
