# SPDX-License-Identifier: Apache-2.0
"""Four-eyes approval through the real socket of running nodes: each action the policy names
waits until a second person, a supervisor, approves it; it then runs once, as the person who
asked, with the approver recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from node.cli.local_client import LocalClient
from node.errors import ComityError
from node.forms.registry import schemas_dir
from node.gen.comity.v1 import audit_pb2
from node.gen.comity.v1 import local_people_pb2 as pb
from node.ids import AgencyId
from node.model.approvals import ALL_POLICIES
from node.model.people import Actor
from node.services.access import current_actor
from node.storage.approval_tables import ApprovalRow
from node.storage.engine import transaction
from tests.integration.harness import Federation, make_configs, running_federation
from tests.people.conftest import Cli, Outcome

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
EXAMPLES = schemas_dir() / "examples"
PENDING_EXIT = 3


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    """Nodes with the policy a new node gets: every action held for approval."""
    configs = {
        agency: replace(config, approvals_required=ALL_POLICIES)
        for agency, config in make_configs(tmp_path, node_database_urls).items()
    }
    async with running_federation(configs) as federation:
        yield federation


async def _token(cli: Cli, agency: str, user: str, *roles: str, unit: str = "Cyber Unit") -> str:
    role_args = [arg for role in roles for arg in ("--role", role)]
    added = await cli(agency, "users", "add", user, "--unit", unit, *role_args)
    assert added.code == 0, added.err
    made = await cli(agency, "tokens", "create", "--user", user, "--label", "t", "--json")
    secret: str = json.loads(made.out)["secret"]
    return secret


def _pending_id(outcome: Outcome) -> str:
    """The approval id from the CLI's answer, which says what a supervisor runs."""
    assert outcome.code == PENDING_EXIT, outcome.err
    words = outcome.out.split()
    approval_id = words[words.index("approval") + 1].rstrip(";")
    assert f"a supervisor runs: comity approvals approve {approval_id}" in " ".join(words)
    return approval_id


async def _approval(cli: Cli, agency: str, approval_id: str, token: str) -> dict[str, Any]:
    shown = await cli(agency, "approvals", "show", approval_id, "--json", token=token)
    assert shown.code == 0, shown.err
    result: dict[str, Any] = json.loads(shown.out)
    return result


async def _approve(cli: Cli, agency: str, approval_id: str, token: str) -> dict[str, Any]:
    done = await cli(agency, "approvals", "approve", approval_id, "--json", token=token)
    assert done.code == 0, done.err
    result: dict[str, Any] = json.loads(done.out)
    assert result["status"] == "done", result
    return result


async def _file(cli: Cli, token: str, kind: str = "emergency-disclosure") -> Outcome:
    form = str(EXAMPLES / f"{kind}.example.json")
    return await cli(UNIT, "request", "file", kind, "--to", AUTHORITY, "--form", form, "--json",
                     token=token)  # fmt: skip


def _record_actors(fed: Federation, agency: str, service: str, method: str) -> list[Actor]:
    """Who the node's service method ran as, each time it ran (it still runs as before)."""
    seen: list[Actor] = []
    target = getattr(fed.nodes[agency], service)
    original = getattr(target, method)

    async def recorded(*args: Any, **kwargs: Any) -> Any:
        seen.append(current_actor())
        return await original(*args, **kwargs)

    setattr(target, method, recorded)
    return seen


async def test_an_emergency_filing_waits_for_a_second_person_then_runs_as_the_requester(
    cli: Cli, fed: Federation
) -> None:
    alice = await _token(cli, UNIT, "alice", "investigator")
    sam = await _token(cli, UNIT, "sam", "supervisor", unit="Supervision")
    ran_as = _record_actors(fed, UNIT, "exchange", "file_request")

    approval_id = _pending_id(await _file(cli, alice))
    assert ran_as == []
    listed = await cli(UNIT, "request", "list", "--json")
    assert json.loads(listed.out) == []  # nothing filed, nothing sent
    pending = await _approval(cli, UNIT, approval_id, sam)
    assert (pending["status"], pending["policy"], pending["requested_by"]) == (
        "pending",
        "emergency-filing",
        "alice",
    )
    assert pending["summary"] == f"file a emergency-disclosure request to {AUTHORITY}"

    done = await _approve(cli, UNIT, approval_id, sam)
    assert (done["decided_by"], done["requested_by"]) == ("sam", "alice")
    [actor] = ran_as
    assert (actor.name, actor.approved_by) == ("alice", "sam")
    # Filed as alice: she, an investigator, sees her unit's case; her view names the request.
    mine = await _approval(cli, UNIT, approval_id, alice)
    assert mine["request_id"] is not None
    shown = await cli(UNIT, "request", "show", mine["request_id"], "--json", token=alice)
    assert shown.code == 0, shown.err
    again = await cli(UNIT, "approvals", "approve", approval_id, token=sam)
    assert "[approval_decided]" in again.err
    assert len(ran_as) == 1


async def test_an_action_outside_the_policy_runs_at_once(cli: Cli, fed: Federation) -> None:
    alice = await _token(cli, UNIT, "alice", "investigator")
    filed = await _file(cli, alice, "preservation")
    assert filed.code == 0, filed.err
    assert json.loads(filed.out)["request_id"]
    listed = await cli(UNIT, "approvals", "list", "--json")
    assert json.loads(listed.out) == []


async def test_a_refusal_on_protected_expression_waits_for_a_supervisor(
    cli: Cli, fed: Federation
) -> None:
    filed = await _file(cli, await _token(cli, UNIT, "alice", "investigator"), "preservation")
    request_id = json.loads(filed.out)["request_id"]
    joana = await _token(cli, AUTHORITY, "joana", "reviewer", unit="Central Authority")
    boss = await _token(cli, AUTHORITY, "rui", "supervisor", unit="Central Authority")
    refuse = ("review", "decide", request_id, "--refuse", "--ground", "protected_expression")
    held = await cli(AUTHORITY, *refuse, "--reason", "political speech", token=joana)
    approval_id = _pending_id(held)
    state = await cli(AUTHORITY, "review", "show", request_id, "--json", token=joana)
    assert json.loads(state.out)["state"] == "registered"

    ran_as = _record_actors(fed, AUTHORITY, "exchange", "send_message")
    await _approve(cli, AUTHORITY, approval_id, boss)
    assert [(a.name, a.approved_by) for a in ran_as] == [("joana", "rui")]
    state = await cli(AUTHORITY, "review", "show", request_id, "--json", token=joana)
    assert json.loads(state.out)["state"] == "refused"


async def test_a_release_to_a_court_waits_for_a_supervisor(
    cli: Cli, fed: Federation, tmp_path: Path
) -> None:
    filed = await _file(cli, await _token(cli, UNIT, "alice", "investigator"), "preservation")
    request_id = json.loads(filed.out)["request_id"]
    clerk = await _token(cli, UNIT, "olga", "oversight", unit="Oversight")
    boss = await _token(cli, UNIT, "sam", "supervisor", unit="Supervision")
    prove = ("audit", "prove", request_id, "--role", "court", "--order", "ORD-7")
    held = await cli(UNIT, *prove, "--reason", "trial", "--out", str(tmp_path), token=clerk)
    approval_id = _pending_id(held)
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.tlog-proof")))

    await _approve(cli, UNIT, approval_id, boss)

    def result() -> bytes:  # the bundles go to the person who asked
        with LocalClient(fed.configs[UNIT].local_socket, token=clerk) as client:
            request = pb.GetApprovalRequest(approval_id=approval_id)
            return client.call(client.approvals.GetApproval, request).result

    assert audit_pb2.ProofBundles.FromString(await asyncio.to_thread(result)).bundles


async def test_sharing_a_red_set_waits_for_a_supervisor(cli: Cli, fed: Federation) -> None:
    analyst = await _token(cli, UNIT, "ivo", "indicator-analyst")
    boss = await _token(cli, UNIT, "sam", "supervisor", unit="Supervision")
    made = await cli(UNIT, "indicators", "create", "--tlp", "red", "--recipient", AUTHORITY,
                     token=analyst)  # fmt: skip
    assert made.code == 0, made.err
    set_id = made.out.split("set ")[1].split()[0]
    approval_id = _pending_id(
        await cli(UNIT, "indicators", "share", set_id, "--with", AUTHORITY, token=analyst)
    )
    assert (await _approval(cli, UNIT, approval_id, boss))["policy"] == "restricted-share"
    shown = await cli(UNIT, "indicators", "show", set_id, "--json", token=analyst)
    assert json.loads(shown.out)["shared_with"] == []
    await _approve(cli, UNIT, approval_id, boss)
    shown = await cli(UNIT, "indicators", "show", set_id, "--json", token=analyst)
    assert json.loads(shown.out)["shared_with"] == [AUTHORITY]


async def test_no_one_approves_their_own_action(cli: Cli, fed: Federation) -> None:
    both = await _token(cli, UNIT, "kaja", "investigator", "supervisor")
    approval_id = _pending_id(await _file(cli, both))
    refused = await cli(UNIT, "approvals", "approve", approval_id, token=both)
    assert refused.code == 1
    assert "[self_approval]" in refused.err
    assert (await _approval(cli, UNIT, approval_id, both))["status"] == "pending"


async def test_approving_needs_the_supervisor_role(cli: Cli, fed: Federation) -> None:
    alice = await _token(cli, UNIT, "alice", "investigator")
    reviewer = await _token(cli, UNIT, "rita", "reviewer", "investigator")
    approval_id = _pending_id(await _file(cli, alice))
    refused = await cli(UNIT, "approvals", "approve", approval_id, token=reviewer)
    assert refused.code == 1
    assert "[access_denied]" in refused.err
    # A person without the role sees their own approvals only.
    theirs = await cli(UNIT, "approvals", "list", "--json", token=reviewer)
    assert json.loads(theirs.out) == []
    mine = await cli(UNIT, "approvals", "list", "--json", token=alice)
    assert [a["approval_id"] for a in json.loads(mine.out)] == [approval_id]


async def test_a_rejection_records_who_and_why_and_nothing_runs(cli: Cli, fed: Federation) -> None:
    alice = await _token(cli, UNIT, "alice", "investigator")
    sam = await _token(cli, UNIT, "sam", "supervisor", unit="Supervision")
    approval_id = _pending_id(await _file(cli, alice))
    no_reason = await cli(UNIT, "approvals", "reject", approval_id, "--reason", " ", token=sam)
    assert "[bad_reason]" in no_reason.err
    rejected = await cli(UNIT, "approvals", "reject", approval_id, "--reason", "not urgent",
                         "--json", token=sam)  # fmt: skip
    assert rejected.code == 0, rejected.err
    shown = json.loads(rejected.out)
    assert (shown["status"], shown["decided_by"], shown["reason"]) == (
        "rejected",
        "sam",
        "not urgent",
    )
    late = await cli(UNIT, "approvals", "approve", approval_id, token=sam)
    assert "[approval_decided]" in late.err
    assert json.loads((await cli(UNIT, "request", "list", "--json")).out) == []


async def test_two_supervisors_approving_at_once_run_the_action_once(
    cli: Cli, fed: Federation
) -> None:
    alice = await _token(cli, UNIT, "alice", "investigator")
    supervisors = [
        await _token(cli, UNIT, name, "supervisor", unit="Supervision") for name in ("sam", "sue")
    ]
    approval_id = _pending_id(await _file(cli, alice))
    ran_as = _record_actors(fed, UNIT, "exchange", "file_request")

    def approve(token: str) -> str:
        request = pb.DecideApprovalRequest(approval_id=approval_id, approve=True)
        try:
            with LocalClient(fed.configs[UNIT].local_socket, token=token) as client:
                return client.call(client.approvals.DecideApproval, request).status
        except ComityError as e:
            return e.code

    outcomes = await asyncio.gather(*(asyncio.to_thread(approve, t) for t in supervisors))
    assert sorted(outcomes) == ["approval_decided", "done"]
    assert len(ran_as) == 1
    assert len(json.loads((await cli(UNIT, "request", "list", "--json")).out)) == 1


async def test_an_expired_approval_cannot_be_approved(cli: Cli, fed: Federation) -> None:
    alice = await _token(cli, UNIT, "alice", "investigator")
    sam = await _token(cli, UNIT, "sam", "supervisor", unit="Supervision")
    approval_id = _pending_id(await _file(cli, alice))
    with transaction(fed.nodes[UNIT].engine) as session:  # a week has passed
        session.execute(
            update(ApprovalRow)
            .where(ApprovalRow.approval_id == approval_id)  # type: ignore[arg-type]
            .values(expires_at_ms=1)
        )
    expired = await cli(UNIT, "approvals", "list", "--status", "expired", "--json", token=sam)
    assert [a["approval_id"] for a in json.loads(expired.out)] == [approval_id]
    late = await cli(UNIT, "approvals", "approve", approval_id, token=sam)
    assert "[approval_expired]" in late.err
    assert json.loads((await cli(UNIT, "request", "list", "--json")).out) == []
