# SPDX-License-Identifier: Apache-2.0
"""Who did and read what: each act and each read of case content is an audit leaf whose
openings name the person, through the real socket of running nodes with tokens for
distinct users; the public leaves name no one; the data-protection officer reads it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from node.audit.leaf import Leaf
from node.forms.registry import schemas_dir
from node.ids import AgencyId
from node.model.people import Actor, Role, Via
from node.services.access import acting_as
from node.storage import audit_repo
from node.storage.engine import transaction
from tests.integration.harness import Federation
from tests.people.conftest import Cli

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
PRODUCTION = schemas_dir() / "examples" / "production.example.json"
PRESERVATION = schemas_dir() / "examples" / "preservation.example.json"
NAMES = (b"kadri", b"joana", b"Cyber Unit", b"Central Authority", b"Data Protection", b"mart")


async def _token(cli: Cli, agency: str, user: str, unit: str, *roles: str) -> str:
    role_args = [arg for role in roles for arg in ("--role", role)]
    added = await cli(agency, "users", "add", user, "--unit", unit, *role_args)
    assert added.code == 0, added.err
    made = await cli(agency, "tokens", "create", "--user", user, "--label", "t", "--json")
    secret: str = json.loads(made.out)["secret"]
    return secret


def _log(fed: Federation, agency: str) -> list[tuple[Leaf, dict[str, str], bytes]]:
    """Every leaf of ``agency``'s log with its kept openings and its public bytes."""
    with transaction(fed.nodes[agency].engine) as session:
        rows = audit_repo.audit_leaves(session, start=0, end=audit_repo.audit_size(session))
        return [
            (
                Leaf.from_bytes(row.leaf),
                {o.name: o.value for o in audit_repo.audit_openings(session, row.idx)},
                row.leaf,
            )
            for row in rows
        ]


def _by(fed: Federation, agency: str, event: str) -> list[dict[str, str]]:
    """The openings of ``agency``'s leaves of ``event``, in log order."""
    return [opened for leaf, opened, _ in _log(fed, agency) if leaf.public.event == event]


async def _file(cli: Cli, token: str, form: Path, request_type: str) -> str:
    filed = await cli(UNIT, "request", "file", request_type, "--to", AUTHORITY,
                      "--form", str(form), "--json", token=token)  # fmt: skip
    assert filed.code == 0, filed.err
    request_id: str = json.loads(filed.out)["request_id"]
    return request_id


async def _evidence_arrived(fed: Federation, request_id: str) -> str:
    """Wait (as the node itself: not logged) until the evidence is complete at the unit."""
    for _ in range(100):
        [entry] = await fed.nodes[UNIT].evidence.list_sets(request_id)
        if entry.complete:
            return entry.evidence_id
        await fed.nodes[AUTHORITY].evidence.upload_pending()
    raise AssertionError("the evidence did not arrive")


async def test_each_act_and_read_is_a_leaf_naming_its_person(
    cli: Cli, fed: Federation, tmp_path: Path
) -> None:
    kadri = await _token(cli, UNIT, "kadri", "Cyber Unit", "investigator")
    joana = await _token(cli, AUTHORITY, "joana", "Central Authority", "reviewer")
    dpo = await _token(cli, UNIT, "dpo", "Data Protection", "oversight")

    request_id = await _file(cli, kadri, PRODUCTION, "production")
    decided = await cli(AUTHORITY, "review", "decide", request_id, "--accept",
                        "--reason", "Conditions met.", token=joana)  # fmt: skip
    assert decided.code == 0, decided.err
    (tmp_path / "posts.csv").write_text("account,post\nchirper:orbit_watch_77,1\n")
    sent = await cli(AUTHORITY, "evidence", "send", request_id,
                     f"{tmp_path / 'posts.csv'}:text/csv", token=joana)  # fmt: skip
    assert sent.code == 0, sent.err
    evidence_id = await _evidence_arrived(fed, request_id)
    for _ in range(2):  # the second read in the same hour adds no leaf
        shown = await cli(UNIT, "request", "show", request_id, token=kadri)
        assert shown.code == 0, shown.err
    listed = await cli(UNIT, "evidence", "list", request_id, token=kadri)
    assert listed.code == 0, listed.err
    fetched = await cli(UNIT, "evidence", "fetch", request_id, evidence_id, "0",
                        "--out", str(tmp_path / "back.csv"), token=kadri)  # fmt: skip
    assert fetched.code == 0, fetched.err
    refused = await cli(UNIT, "node", "status", token=kadri)
    assert "[access_denied]" in refused.err

    kadri_at = {"officer": "kadri", "officer_unit": "Cyber Unit"}
    [filing] = _by(fed, UNIT, "request.sent")
    assert filing.items() >= kadri_at.items()
    [decision] = _by(fed, AUTHORITY, "decision.sent")
    assert decision["officer"] == "joana"
    assert decision["officer_unit"] == "Central Authority"
    assert decision["reason"] == "Conditions met."
    [read] = _by(fed, UNIT, "case.read")
    assert read.items() >= kadri_at.items()
    [fetch] = _by(fed, UNIT, "case.evidence-read")
    assert fetch.items() >= {**kadri_at, "subject": f"{evidence_id}/0"}.items()
    [refusal] = _by(fed, UNIT, "call.refused")
    assert refusal.items() >= {**kadri_at, "subject": "GetNodeStatus"}.items()
    assert refusal["detail"] == "access_denied"
    assert "officer" not in _by(fed, UNIT, "decision.received")[0]  # the node received it

    for agency in (UNIT, AUTHORITY):
        for _leaf, _opened, data in _log(fed, agency):
            for secret in (*NAMES, kadri.encode(), joana.encode(), dpo.encode()):
                assert secret not in data
            for token in (kadri, joana, dpo):
                assert token.split("_")[1].encode() not in data  # nor a token id

    await _the_officer_reads_it_back(cli, request_id, dpo)
    await _oversight_opens_a_leaf(cli, fed, tmp_path, dpo)
    await _the_logs_still_reconcile(cli)


async def _the_officer_reads_it_back(cli: Cli, request_id: str, dpo: str) -> None:
    listed = await cli(UNIT, "access-log", "--user", "kadri", "--json", token=dpo)
    assert listed.code == 0, listed.err
    entries: list[dict[str, Any]] = json.loads(listed.out)
    assert [e["event"] for e in entries] == [
        "call.refused",
        "case.evidence-read",
        "case.evidence-listed",
        "case.read",
        "request.sent",
    ]
    assert {(e["user"], e["unit"]) for e in entries} == {("kadri", "Cyber Unit")}
    assert all(e["request_id"] == request_id for e in entries[1:])
    assert entries[0]["agency"] == UNIT
    assert entries[-1]["agency"] == AUTHORITY

    again = await cli(UNIT, "access-log", "--since", "1h", "--json", token=dpo)
    [query] = [e for e in json.loads(again.out) if e["event"] == "access-log.read"]
    assert (query["user"], query["subject"]) == ("dpo", "user=kadri limit=100")
    by_request = await cli(UNIT, "access-log", "--exchange", request_id, "--json", token=dpo)
    assert len(json.loads(by_request.out)) == 4

    as_admin = await cli(UNIT, "access-log", "--json")  # the admin login holds oversight
    assert as_admin.code == 0
    bad = await cli(UNIT, "access-log", "--since", "last week", token=dpo)
    assert bad.code == 1
    assert "[malformed]" in bad.err


async def _oversight_opens_a_leaf(cli: Cli, fed: Federation, tmp_path: Path, dpo: str) -> None:
    [index] = [
        i for i, (leaf, _, _) in enumerate(_log(fed, UNIT)) if leaf.public.event == "case.read"
    ]
    assert await fed.nodes[UNIT].collect_cosignatures() >= 1
    out = tmp_path / "bundles"
    proved = await cli(UNIT, "audit", "prove", str(index), "--role", "oversight",
                       "--reason", "complaint 17", "--out", str(out), token=dpo)  # fmt: skip
    assert proved.code == 0, proved.err
    [bundle] = out.glob("*.tlog-proof")
    checked = await cli(UNIT, "audit", "check-proof", str(bundle), "--json")
    assert checked.code == 0, checked.err
    opened = json.loads(checked.out)["opened"]
    assert opened == {"officer": "kadri", "officer_unit": "Cyber Unit"}
    [release] = _by(fed, UNIT, "disclosure.opened")
    assert (release["officer"], release["reason"]) == ("dpo", "complaint 17")


async def _the_logs_still_reconcile(cli: Cli) -> None:
    reconciled = await cli(UNIT, "audit", "reconcile", UNIT, AUTHORITY, "--json")
    assert reconciled.code == 0, reconciled.out
    assert json.loads(reconciled.out)["findings"] == []
    reported = await cli(UNIT, "audit", "report", UNIT, AUTHORITY)
    assert reported.code == 0, reported.err
    report = json.loads(reported.out)
    assert report["exchanges"] == "<5"
    assert {"case.read", "call.refused", "user.added", "token.created"} <= set(report["events"])
    assert b"kadri" not in reported.out.encode()


async def test_an_approved_action_names_requester_and_approver(cli: Cli, fed: Federation) -> None:
    kadri = await _token(cli, UNIT, "kadri", "Cyber Unit", "investigator")
    request_id = await _file(cli, kadri, PRESERVATION, "preservation")
    requester = Actor(
        name="kadri",
        unit="Cyber Unit",
        roles=frozenset({Role.INVESTIGATOR}),
        via=Via.TOKEN,
        approved_by="mart",
    )
    with acting_as(requester):
        await fed.nodes[UNIT].exchange.send_message(
            request_id=request_id,
            kind="withdrawal",
            body_json=b'{"form_version":"withdrawal.v1","reason":"Filed in error."}',
        )
    [withdrawal] = _by(fed, UNIT, "withdrawal.sent")
    assert (
        withdrawal.items()
        >= {
            "officer": "kadri",
            "officer_unit": "Cyber Unit",
            "approver": "mart",
            "reason": "Filed in error.",
        }.items()
    )
    [entry] = [
        e
        for e in json.loads((await cli(UNIT, "access-log", "--user", "mart", "--json")).out)
        if e["event"] == "withdrawal.sent"
    ]
    assert (entry["user"], entry["approved_by"], entry["reason"]) == (
        "kadri",
        "mart",
        "Filed in error.",
    )


async def test_user_and_token_changes_name_the_admin_who_made_them(
    cli: Cli, fed: Federation
) -> None:
    kadri = await _token(cli, UNIT, "kadri", "Cyber Unit", "investigator")
    assert (await cli(UNIT, "users", "grant", "kadri", "--role", "reviewer")).code == 0
    assert (await cli(UNIT, "users", "disable", "kadri")).code == 0
    token_id = kadri.split("_")[1]
    assert (await cli(UNIT, "tokens", "revoke", token_id)).code == 0
    events = [
        (leaf.public.event, opened.get("officer"), opened.get("subject"), opened.get("detail"))
        for leaf, opened, _ in _log(fed, UNIT)
        if leaf.public.event.startswith(("user.", "token."))
    ]
    assert events == [
        ("user.added", "admin", "kadri", "roles=investigator"),
        ("token.created", "admin", token_id, "user=kadri days=90"),
        ("user.roles-changed", "admin", "kadri", "roles=investigator,reviewer"),
        ("user.disabled", "admin", "kadri", None),
        ("token.revoked", "admin", token_id, "user=kadri"),
    ]
