# SPDX-License-Identifier: Apache-2.0
"""The people of a node: roles, the permissions each role carries, and who is acting.

An agency separates the investigator who asks from the reviewer who decides, the supervisor
who approves, the operator who keeps the node running and the oversight body that looks at
who did what. Each role is a fixed set of :class:`Permission`; a user holds one or more roles
and belongs to one unit. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from node.errors import ComityError, ErrorKind


class Role(StrEnum):
    INVESTIGATOR = "investigator"
    """Files and follows requests of their unit, answers clarifications, fetches evidence."""
    REVIEWER = "reviewer"
    """Works the inbound queue: starts, clarifies, decides, preserves, executes, sends evidence."""
    SUPERVISOR = "supervisor"
    """Approves what the node's policy says needs a second person."""
    INDICATOR_ANALYST = "indicator-analyst"
    """Indicator sets, overlap checks, reveals, campaigns, groups, sightings."""
    AUDITOR = "auditor"
    """Verifies, reconciles and reports on the audit log; never sees case content."""
    OVERSIGHT = "oversight"
    """Opens a specific entry's committed details, with a reason; reads the access log."""
    OPERATOR = "operator"
    """Node status, keys, directory, retention; never sees case content."""
    ADMIN = "admin"
    """Users and roles."""


class Permission(StrEnum):
    REQUEST_FILE = "request.file"
    """File outbound requests and send the requester's messages on them."""
    REQUEST_REVIEW = "request.review"
    """Send the requested party's messages on inbound requests, and evidence."""
    CASE_READ_UNIT = "case.read-unit"
    """Read the outbound cases one's own unit filed."""
    CASE_READ_ALL = "case.read-all"
    """Read every case held here, inbound and outbound."""
    APPROVAL_DECIDE = "approval.decide"
    INDICATORS = "indicators.manage"
    AUDIT_VERIFY = "audit.verify"
    AUDIT_OPEN = "audit.open"
    """Release the committed details of an audit entry, with a reason."""
    ACCESS_LOG = "access-log.read"
    NODE_OPERATE = "node.operate"
    USERS_ADMIN = "users.admin"
    SELF = "self"
    """Ask who one is signed in as; every signed-in user holds it."""


P = Permission
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.INVESTIGATOR: frozenset({P.REQUEST_FILE, P.CASE_READ_UNIT}),
    Role.REVIEWER: frozenset({P.REQUEST_REVIEW, P.CASE_READ_ALL}),
    Role.SUPERVISOR: frozenset({P.APPROVAL_DECIDE, P.CASE_READ_ALL}),
    Role.INDICATOR_ANALYST: frozenset({P.INDICATORS}),
    Role.AUDITOR: frozenset({P.AUDIT_VERIFY}),
    Role.OVERSIGHT: frozenset({P.AUDIT_OPEN, P.ACCESS_LOG, P.AUDIT_VERIFY}),
    Role.OPERATOR: frozenset({P.NODE_OPERATE}),
    Role.ADMIN: frozenset({P.USERS_ADMIN}),
}

USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,62}$")
UNIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,126}$")


class Via(StrEnum):
    """How the acting person proved who they are."""

    OS_USER = "os-user"
    TOKEN = "token"  # noqa: S105 (a way of signing in, not a secret)
    SESSION = "session"
    NODE = "node"
    """The node itself: background work and in-process callers, not a person."""


class BadUserError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_user"


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who is acting, as the node established it for this call."""

    name: str
    unit: str
    roles: frozenset[Role]
    via: Via
    approved_by: str | None = None
    """When a pending action runs after a second person approved it: that person's name
    (the action is still attributed to ``name``, who asked for it)."""

    @property
    def permissions(self) -> frozenset[Permission]:
        held = {P.SELF}
        for role in self.roles:
            held |= ROLE_PERMISSIONS[role]
        return frozenset(held)

    def holds(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def is_person(self) -> bool:
        return self.via is not Via.NODE


NODE_ACTOR = Actor(name="node", unit="", roles=frozenset(Role), via=Via.NODE)
"""The node acting on its own: background delivery, retention, and callers inside the node's
process (which already hold everything the node holds)."""


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """Role names as typed by people, checked.

    Raises:
        BadUserError: an unknown role, naming the known ones.
    """
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip()))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise BadUserError(f"unknown role {name!r}; roles are: {known}") from None
    return frozenset(roles)


def check_user_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise BadUserError(
            f"user name {name!r} must be 1-63 characters: lower-case letters, digits, '.', "
            "'_' or '-', starting with a letter"
        )
    return name


def check_unit(unit: str) -> str:
    if not UNIT_NAME.fullmatch(unit):
        raise BadUserError(
            f"unit {unit!r} must be 1-127 characters: letters, digits, space, '.', '_', '/' or '-'"
        )
    return unit
