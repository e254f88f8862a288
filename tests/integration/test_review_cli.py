# SPDX-License-Identifier: Apache-2.0
"""The reviewer's and the requester's lifecycle commands against real nodes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from node.cli.main import main
from node.forms.registry import schemas_dir
from node.ids import AgencyId
from tests.integration.harness import Federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
EXAMPLE = schemas_dir() / "examples" / "preservation.example.json"


async def comity(
    capsys: pytest.CaptureFixture[str], fed: Federation, agency: str, *args: str
) -> tuple[int, str, str]:
    config = str(fed.configs[agency].config_path)
    code = await asyncio.to_thread(main, [*args, "--config", config])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_review_queue_clarify_answer_and_refuse(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await comity(
        capsys, fed, UNIT, "request", "file", "preservation", "--to", AUTHORITY,
        "--form", str(EXAMPLE), "--json",
    )  # fmt: skip
    assert code == 0
    request_id = json.loads(out)["request_id"]

    code, out, _ = await comity(capsys, fed, AUTHORITY, "review", "queue", "--json")
    assert [r["request_id"] for r in json.loads(out)] == [request_id]

    steps = [
        (AUTHORITY, ("review", "start", request_id), "under_review"),
        (AUTHORITY, ("review", "clarify", request_id, "--question", "Which accounts?"),
         "clarification_requested"),
        (UNIT, ("request", "answer", request_id, "--answer", "The three listed."),
         "under_review"),
        (AUTHORITY, ("review", "decide", request_id, "--refuse", "--ground",
                     "protected_expression", "--reason", "Political criticism."), "refused"),
    ]  # fmt: skip
    for agency, args, state in steps:
        code, out, err = await comity(capsys, fed, agency, *args)
        assert code == 0, err
        said = " ".join(out.split())  # the console wraps long lines
        assert f"it is {state} now" in said
        assert "delivery delivered" in said

    code, out, _ = await comity(capsys, fed, AUTHORITY, "review", "queue", "--json")
    assert json.loads(out) == []
    code, out, _ = await comity(capsys, fed, UNIT, "request", "show", request_id, "--json")
    shown = json.loads(out)
    assert shown["state"] == "refused"
    assert [h["kind"] for h in shown["history"]] == [
        "request", "review", "clarification-request", "clarification-answer", "decision",
    ]  # fmt: skip
    assert shown["history"][-1]["body"]["grounds"] == ["protected_expression"]
    code, out, _ = await comity(capsys, fed, AUTHORITY, "review", "show", request_id)
    assert code == 0
    assert "decision" in out
    assert "refused" in out


async def test_lifecycle_commands_explain_refusals(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=EXAMPLE.read_bytes()
    )
    request_id = view.request_id
    code, _, err = await comity(
        capsys, fed, AUTHORITY, "review", "decide", request_id, "--refuse", "--reason", "No."
    )
    assert code == 1
    err = " ".join(err.split())
    assert "needs at least one --ground" in err
    code, _, err = await comity(
        capsys, fed, UNIT, "review", "decide", request_id, "--accept", "--reason", "Mine."
    )
    assert code == 1
    assert "only the requested party sends decision" in err
    assert "[wrong_party]" in err
    code, _, err = await comity(
        capsys, fed, AUTHORITY, "review", "preserve", request_id, "--until", "2027-01-01"
    )
    assert code == 1
    assert "preserved_until: must be an RFC 3339 date-time" in err
    code, _, err = await comity(
        capsys, fed, AUTHORITY, "review", "execute", request_id, "--summary", "Done."
    )
    assert code == 1
    assert "[illegal_transition]" in err
    assert "Traceback" not in err


async def test_preview_shows_exactly_what_would_leave(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    form = json.loads(EXAMPLE.read_text())
    form["necessity"] = "Reach the suspect at orbit.watch@mail.example before the purge."
    path = tmp_path / "form.json"
    path.write_text(json.dumps(form))
    code, _, err = await comity(
        capsys, fed, UNIT, "request", "preview", "preservation", "--to", AUTHORITY,
        "--form", str(path),
    )  # fmt: skip
    assert code == 1
    assert "[not_minimal]" in err
    code, out, _ = await comity(
        capsys, fed, UNIT, "request", "preview", "preservation", "--to", AUTHORITY,
        "--form", str(path), "--strip", "--json",
    )  # fmt: skip
    assert code == 0
    preview = json.loads(out)
    assert preview["stripped"] == ["$.necessity: an e-mail address removed"]
    assert preview["form"]["necessity"].startswith("Reach the suspect at [identifier removed]")
    assert preview["legal_basis"] == "budapest-art29"
    assert preview["due_hours_after_receipt"] == 72
    assert fed.rows(UNIT)["exchange"] == 0  # nothing was filed
    code, out, _ = await comity(capsys, fed, UNIT, "request", "overdue")
    assert "Nothing is overdue." in out


def test_forms_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forms", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {row["type"] for row in listed} >= {"preservation", "emergency-disclosure"}
    assert main(["forms", "show", "emergency-disclosure", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "emergency.threat" in {f["field"] for f in shown["fields"]}
    assert {p["code"] for p in shown["profiles"]} == {
        "sap-art9", "sap-art10", "eu-e-evidence-production-order",
    }  # fmt: skip
    assert main(["forms", "show", "search-warrant"]) == 1
    assert "unknown request type" in capsys.readouterr().err
