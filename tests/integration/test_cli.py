# SPDX-License-Identifier: Apache-2.0
"""The `comity request` commands against real nodes, through the local Unix socket."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from node.cli.main import main
from node.forms.registry import schemas_dir
from tests.integration.harness import Federation

UNIT, AUTHORITY = "aa-cyber-unit", "bb-central-authority"
EXAMPLE = schemas_dir() / "examples" / "preservation.example.json"


async def comity(
    capsys: pytest.CaptureFixture[str], fed: Federation, agency: str, *args: str
) -> tuple[int, str, str]:
    config = str(fed.configs[agency].config_path)
    # The CLI blocks; run it off the event loop the nodes are serving on.
    code = await asyncio.to_thread(main, [*args, "--config", config])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_file_list_show_round_trip(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await comity(
        capsys,
        fed,
        UNIT,
        "request",
        "file",
        "preservation",
        "--to",
        AUTHORITY,
        "--form",
        str(EXAMPLE),
        "--json",
    )
    assert code == 0
    filed = json.loads(out)
    assert filed["state"] == "delivered"
    assert filed["receipt_verified"] is True
    assert filed["receipt"]["receiver"] == AUTHORITY

    code, out, _ = await comity(capsys, fed, AUTHORITY, "request", "list", "--json")
    assert code == 0
    [listed] = json.loads(out)
    assert listed["request_id"] == filed["request_id"]
    assert listed["direction"] == "inbound"
    assert listed["state"] == "registered"

    code, out, _ = await comity(
        capsys, fed, AUTHORITY, "request", "show", filed["request_id"], "--form"
    )
    assert code == 0
    assert "chirper:orbit_watch_77" in out  # the canonical indicator, as received
    assert "registered" in out
    assert "Signed receipt issued by this node" in out
    assert filed["receipt"]["envelope_digest"] in out.replace("\n", "").replace(" ", "")

    code, out, _ = await comity(capsys, fed, UNIT, "request", "show", filed["request_id"])
    assert code == 0
    assert "delivered" in out
    assert "Signed receipt from the recipient (verified)" in out


async def test_errors_are_one_plain_line_with_a_code(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = await comity(
        capsys,
        fed,
        UNIT,
        "request",
        "file",
        "preservation",
        "--to",
        "zz-nobody",
        "--form",
        str(EXAMPLE),
    )
    assert code == 1
    assert "zz-nobody" in err
    assert "unknown_agency" in err

    bad = tmp_path / "bad.json"
    bad.write_text('{"form_version": "preservation.v1"}')
    code, _, err = await comity(
        capsys,
        fed,
        UNIT,
        "request",
        "file",
        "preservation",
        "--to",
        AUTHORITY,
        "--form",
        str(bad),
    )
    assert code == 1
    assert "form_invalid" in err

    code, _, err = await comity(capsys, fed, UNIT, "request", "show", "not-a-uuid")
    assert code == 1
    assert "malformed" in err

    code, _, err = await comity(
        capsys, fed, UNIT, "request", "show", "3b0c3c9e-8d0e-4c36-9d7c-3f0a1d2e4b5c"
    )
    assert code == 1
    assert "not_found" in err


async def test_local_socket_is_private_to_the_node_user(fed: Federation) -> None:
    mode = fed.configs[UNIT].local_socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert mode & 0o077 == 0


def test_cli_says_when_the_local_node_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from node.config import init_node

    config = init_node(
        directory=tmp_path / "n",
        agency_id="aa-cyber-unit",
        country="EE",
        roles=["requesting"],
        listen="127.0.0.1:1",
    )
    code = main(["request", "list", "--config", str(config.config_path)])
    assert code == 1
    assert "is `comity node serve` running?" in capsys.readouterr().err
    # Filing says so too: the node was never reached, so nothing can have been filed.
    form = ["--form", str(EXAMPLE), "--config", str(config.config_path)]
    code = main(["request", "file", "preservation", "--to", "bb-central-authority", *form])
    assert code == 1
    err = capsys.readouterr().err
    assert "local_node_unreachable" in err
    assert "outcome_unknown" not in err


async def test_filing_again_under_the_printed_key_files_once(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["request", "file", "preservation", "--to", AUTHORITY, "--form", str(EXAMPLE)]
    code, out, _ = await comity(capsys, fed, UNIT, *args, "--idempotency-key", "k-42", "--json")
    assert code == 0
    first = json.loads(out)
    code, out, _ = await comity(capsys, fed, UNIT, *args, "--idempotency-key", "k-42", "--json")
    assert code == 0
    assert json.loads(out)["request_id"] == first["request_id"]
    code, out, _ = await comity(capsys, fed, AUTHORITY, "request", "list", "--json")
    assert [r["request_id"] for r in json.loads(out)] == [first["request_id"]]
    # Each run without the option makes a key of its own: a new request.
    code, out, _ = await comity(capsys, fed, UNIT, *args, "--json")
    assert code == 0
    assert json.loads(out)["request_id"] != first["request_id"]
    code, _, err = await comity(
        capsys, fed, UNIT, "request", "file", "preservation", "--to", "cc-central-authority",
        "--form", str(EXAMPLE), "--idempotency-key", "k-42",
    )  # fmt: skip
    assert code == 1
    assert "idempotency_key_reused" in err


async def test_request_list_pages_past_any_limit(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        code, _, _ = await comity(
            capsys, fed, UNIT, "request", "file", "preservation", "--to", AUTHORITY,
            "--form", str(EXAMPLE),
        )  # fmt: skip
        assert code == 0
    code, out, err = await comity(capsys, fed, UNIT, "request", "list", "--limit", "2", "--json")
    assert code == 0
    first = [r["request_id"] for r in json.loads(out)]
    assert len(first) == 2
    token = err.split("--page-token ")[1].split()[0]
    code, out, err = await comity(
        capsys, fed, UNIT, "request", "list", "--limit", "2", "--page-token", token, "--json"
    )
    assert code == 0
    second = [r["request_id"] for r in json.loads(out)]
    assert len(second) == 1
    assert "--page-token" not in err  # the last page
    code, out, _ = await comity(capsys, fed, UNIT, "request", "list", "--all", "--json")
    assert [r["request_id"] for r in json.loads(out)] == first + second
    code, _, err = await comity(capsys, fed, UNIT, "request", "list", "--page-token", "zz")
    assert code == 1
    assert "malformed" in err
