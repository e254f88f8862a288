# SPDX-License-Identifier: Apache-2.0
"""Whose cases a user sees and acts on: investigators their unit's, reviewers the inbound
queue, operators none, through the real socket of running nodes."""

from __future__ import annotations

import json

from node.forms.registry import schemas_dir
from node.ids import AgencyId
from tests.people.conftest import Cli

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
EXAMPLE = schemas_dir() / "examples" / "preservation.example.json"


async def _token(cli: Cli, agency: str, user: str, unit: str, *roles: str) -> str:
    role_args = [arg for role in roles for arg in ("--role", role)]
    added = await cli(agency, "users", "add", user, "--unit", unit, *role_args)
    assert added.code == 0, added.err
    made = await cli(agency, "tokens", "create", "--user", user, "--label", "t", "--json")
    secret: str = json.loads(made.out)["secret"]
    return secret


async def _file(cli: Cli, token: str) -> str:
    filed = await cli(UNIT, "request", "file", "preservation", "--to", AUTHORITY,
                      "--form", str(EXAMPLE), "--json", token=token)  # fmt: skip
    assert filed.code == 0, filed.err
    request_id: str = json.loads(filed.out)["request_id"]
    return request_id


async def test_investigators_see_and_follow_only_their_units_requests(cli: Cli) -> None:
    kadri = await _token(cli, UNIT, "kadri", "Cyber Unit", "investigator")
    peeter = await _token(cli, UNIT, "peeter", "Fraud Unit", "investigator")
    ours = await _file(cli, kadri)
    theirs = await _file(cli, peeter)

    listed = await cli(UNIT, "request", "list", "--json", token=kadri)
    assert [r["request_id"] for r in json.loads(listed.out)] == [ours]
    assert (await cli(UNIT, "request", "show", ours, token=kadri)).code == 0
    refused = await cli(UNIT, "request", "show", theirs, token=kadri)
    assert refused.code == 1
    assert "[outside_unit]" in refused.err
    withdrawn = await cli(UNIT, "request", "withdraw", theirs, "--reason", "x", token=kadri)
    assert "[outside_unit]" in withdrawn.err

    everyone = await cli(UNIT, "request", "list", "--json")  # the admin holds every role
    assert {r["request_id"] for r in json.loads(everyone.out)} == {ours, theirs}


async def test_each_side_of_an_exchange_is_worked_by_its_own_role(cli: Cli) -> None:
    kadri = await _token(cli, UNIT, "kadri", "Cyber Unit", "investigator")
    joana = await _token(cli, AUTHORITY, "joana", "Central Authority", "reviewer")
    inspector = await _token(cli, AUTHORITY, "rui", "Central Authority", "investigator")
    request_id = await _file(cli, kadri)

    queue = await cli(AUTHORITY, "review", "queue", "--json", token=joana)
    assert [r["request_id"] for r in json.loads(queue.out)] == [request_id]
    refused = await cli(AUTHORITY, "review", "start", request_id, token=inspector)
    assert refused.code == 1
    assert "[outside_unit]" in refused.err or "[access_denied]" in refused.err
    started = await cli(AUTHORITY, "review", "start", request_id, token=joana)
    assert started.code == 0, started.err

    reviewer_at_unit = await _token(cli, UNIT, "anu", "Cyber Unit", "reviewer")
    withdrawn = await cli(UNIT, "request", "withdraw", request_id, "--reason", "x",
                          token=reviewer_at_unit)  # fmt: skip
    assert withdrawn.code == 1
    assert "[access_denied]" in withdrawn.err


async def test_operators_never_receive_form_content(cli: Cli) -> None:
    kadri = await _token(cli, UNIT, "kadri", "Cyber Unit", "investigator")
    ops = await _token(cli, UNIT, "ops", "IT", "operator")
    request_id = await _file(cli, kadri)
    for args in (("request", "show", request_id), ("request", "list")):
        refused = await cli(UNIT, *args, token=ops)
        assert refused.code == 1
        assert "[access_denied]" in refused.err
    assert (await cli(UNIT, "node", "status", token=ops)).code == 0
