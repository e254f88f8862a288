# SPDX-License-Identifier: Apache-2.0
"""The table of local operations covers exactly the local API, and roles carry what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.gen.comity.v1 import local_credentials_pb2, local_pb2, local_people_pb2
from node.model.people import NODE_ACTOR, Actor, Permission, Role, Via
from node.services.access import (
    LOCAL_OPERATIONS,
    PUBLIC_OPERATIONS,
    AccessDeniedError,
    acting_as,
    check_operation,
    current_actor,
    may_read_case,
    require,
)
from ops.permission_table import markdown_table


def _methods() -> set[str]:
    services = (
        local_pb2.DESCRIPTOR.services_by_name["Local"],
        local_people_pb2.DESCRIPTOR.services_by_name["People"],
        local_people_pb2.DESCRIPTOR.services_by_name["Approvals"],
        local_credentials_pb2.DESCRIPTOR.services_by_name["Credentials"],
    )
    return {method.name for service in services for method in service.methods}


def test_every_local_operation_names_its_permissions_and_no_other_is_listed() -> None:
    assert set(LOCAL_OPERATIONS) | PUBLIC_OPERATIONS == _methods()
    assert not set(LOCAL_OPERATIONS) & PUBLIC_OPERATIONS
    assert all(LOCAL_OPERATIONS.values())


def _actor(*roles: Role, unit: str = "Cyber Unit") -> Actor:
    return Actor(name="someone", unit=unit, roles=frozenset(roles), via=Via.TOKEN)


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (Role.INVESTIGATOR, "FileRequest", "GetNodeStatus"),
        (Role.REVIEWER, "SendEvidence", "FileRequest"),
        (Role.SUPERVISOR, "GetRequest", "SendMessage"),
        (Role.INDICATOR_ANALYST, "CheckOverlap", "GetRequest"),
        (Role.OVERSIGHT, "ProveRecord", "ListRequests"),
        (Role.OPERATOR, "GetNodeStatus", "GetRequest"),
        (Role.ADMIN, "AddUser", "FetchEvidence"),
        (Role.AUDITOR, "WhoAmI", "ProveRecord"),
    ],
)
def test_roles_allow_and_refuse_operations(role: Role, allowed: str, refused: str) -> None:
    check_operation(_actor(role), allowed)
    with pytest.raises(AccessDeniedError, match=refused):
        check_operation(_actor(role), refused)


def test_operators_and_auditors_never_read_case_content() -> None:
    for role in (Role.OPERATOR, Role.AUDITOR, Role.INDICATOR_ANALYST, Role.ADMIN):
        for operation in ("GetRequest", "ListRequests", "FetchEvidence", "ListEvidence"):
            with pytest.raises(AccessDeniedError):
                check_operation(_actor(role), operation)


def test_investigators_read_only_their_units_cases() -> None:
    investigator = _actor(Role.INVESTIGATOR)
    assert may_read_case(investigator, filed_by_unit="Cyber Unit")
    assert not may_read_case(investigator, filed_by_unit="Another Unit")
    assert not may_read_case(investigator, filed_by_unit=None)
    assert may_read_case(_actor(Role.REVIEWER), filed_by_unit=None)


def test_the_acting_user_holds_for_the_enclosed_code_only() -> None:
    assert current_actor() is NODE_ACTOR
    with acting_as(_actor(Role.OPERATOR)) as operator:
        assert current_actor() is operator
        require(Permission.NODE_OPERATE)
        with pytest.raises(AccessDeniedError, match=r"request\.file"):
            require(Permission.REQUEST_FILE)
    assert current_actor() is NODE_ACTOR


def test_the_readme_shows_the_permission_table_the_node_enforces() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme
