# SPDX-License-Identifier: Apache-2.0
"""Who may do what: the one table of local operations and the permission each needs.

Every operation of the node's local API names the permissions that allow it
(:data:`LOCAL_OPERATIONS`); the local server's authentication step establishes the acting
:class:`~node.model.people.Actor` for the call and asks :func:`check_operation` before the
operation runs. Services that decide per case (whose unit filed a request, which side of an
exchange a message belongs to) ask :func:`require` and :func:`current_actor` themselves.

Code running inside the node's own process without a person behind it (background workers,
the node's own tests) acts as :data:`~node.model.people.NODE_ACTOR`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from node.errors import ComityError, ErrorKind
from node.model.people import NODE_ACTOR, Actor, Permission, Via

P = Permission


class NotSignedInError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "not_signed_in"


class AccessDeniedError(ComityError):
    """The acting user's roles do not carry the permission the operation needs."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "access_denied"


class OutsideUnitError(ComityError):
    """An investigator asked for a case their unit did not file."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "outside_unit"


_CASE_READ = frozenset({P.CASE_READ_UNIT, P.CASE_READ_ALL})
_CASE_ACT = frozenset({P.REQUEST_FILE, P.REQUEST_REVIEW})

LOCAL_OPERATIONS: Mapping[str, frozenset[Permission]] = {
    # requests and their lifecycle
    "FileRequest": frozenset({P.REQUEST_FILE}),
    "PreviewRequest": frozenset({P.REQUEST_FILE}),
    "ListRequests": _CASE_READ,
    "GetRequest": _CASE_READ,
    "ListOverdue": _CASE_READ,
    "SendMessage": _CASE_ACT,
    "SendEvidence": frozenset({P.REQUEST_REVIEW}),
    "ListEvidence": _CASE_READ,
    "FetchEvidence": _CASE_READ,
    # the audit log
    "ProveRecord": frozenset({P.AUDIT_OPEN}),
    "AccessLog": frozenset({P.ACCESS_LOG}),
    # running the node
    "GetNodeStatus": frozenset({P.NODE_OPERATE}),
    "InstallDirectory": frozenset({P.NODE_OPERATE}),
    "EraseExpired": frozenset({P.NODE_OPERATE}),
    # indicators, overlap, reveals, campaigns, groups, sightings
    **dict.fromkeys(
        (
            "CreateGroup",
            "ListGroups",
            "RotateGroup",
            "PublishToGroup",
            "SyncGroups",
            "GroupMatches",
            "CreateIndicatorSet",
            "AddIndicators",
            "ListIndicatorSets",
            "GetIndicatorSet",
            "ShareIndicatorSet",
            "RevokeIndicatorSet",
            "CheckOverlap",
            "CreateCampaign",
            "DetectCampaigns",
            "LinkCampaignAgency",
            "ListCampaigns",
            "GetCampaign",
            "AlertCampaign",
            "ChangeBenignValues",
            "AskReveal",
            "ListRevealRequests",
            "DecideReveal",
            "RevealOverlap",
            "MatchPdq",
            "ReportSighting",
            "ListSightings",
        ),
        frozenset({P.INDICATORS}),
    ),
    # people
    "WhoAmI": frozenset({P.SELF}),
    "AddUser": frozenset({P.USERS_ADMIN}),
    "ListUsers": frozenset({P.USERS_ADMIN}),
    "GetUser": frozenset({P.USERS_ADMIN}),
    "SetUserEnabled": frozenset({P.USERS_ADMIN}),
    "ChangeRoles": frozenset({P.USERS_ADMIN}),
    "CreateToken": frozenset({P.USERS_ADMIN}),
    "ListTokens": frozenset({P.USERS_ADMIN}),
    "RevokeToken": frozenset({P.USERS_ADMIN}),
    # four-eyes approval: one's own approvals, or every one for a supervisor
    "ListApprovals": frozenset({P.SELF}),
    "GetApproval": frozenset({P.SELF}),
    "DecideApproval": frozenset({P.APPROVAL_DECIDE}),
    # credentials (the service lets users manage their own, admins anyone's)
    "SetPassword": frozenset({P.SELF}),
    "EnrolTotp": frozenset({P.SELF}),
    "Unlock": frozenset({P.USERS_ADMIN}),
}
"""Each local operation (by its RPC method name) and the permissions that allow it: the
caller must hold at least one. An operation missing here is refused to everyone."""

PUBLIC_OPERATIONS: frozenset[str] = frozenset(
    {"SignIn", "SignOut", "StartOidcSignIn", "SignInOidc"}
)
"""The local operations made without being signed in: they are how one signs in (and out).
Each proves who is calling by itself (a password and a one-time code, the identity
provider's word, or the session to end)."""

SIGNING_IN = Actor(name="", unit="", roles=frozenset(), via=Via.SESSION)
"""Who runs a public operation: nobody yet, holding no permission (not the node itself)."""

_ACTOR: ContextVar[Actor | None] = ContextVar("comity_actor", default=None)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Run the enclosed code as ``actor``."""
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


def current_actor() -> Actor:
    """Who is acting: the signed-in person of this call, or the node itself."""
    return _ACTOR.get() or NODE_ACTOR


def check_operation(actor: Actor, operation: str) -> None:
    """Refuse ``operation`` unless ``actor`` holds one of the permissions it needs.

    Raises:
        AccessDeniedError: naming the operation and the roles' missing permission.
    """
    needed = LOCAL_OPERATIONS.get(operation)
    if needed is None:
        raise AccessDeniedError(f"{operation} is not an operation of the local API")
    if not needed & actor.permissions:
        wanted = " or ".join(sorted(needed))
        raise AccessDeniedError(
            f"user {actor.name!r} may not {operation}: it needs {wanted}, which none of "
            f"the user's roles ({_roles(actor)}) carries"
        )


def require(permission: Permission) -> Actor:
    """The acting user, if they hold ``permission``.

    Raises:
        AccessDeniedError: they do not.
    """
    actor = current_actor()
    if not actor.holds(permission):
        raise AccessDeniedError(f"user {actor.name!r} lacks {permission} (roles: {_roles(actor)})")
    return actor


def may_read_case(actor: Actor, *, filed_by_unit: str | None) -> bool:
    """Whether ``actor`` may read a case; ``filed_by_unit`` is the unit that filed it
    (``None`` for an inbound case or one filed before people were recorded)."""
    if actor.holds(P.CASE_READ_ALL):
        return True
    return actor.holds(P.CASE_READ_UNIT) and filed_by_unit == actor.unit


def unit_scope(actor: Actor) -> str | None:
    """The unit whose cases alone ``actor`` may list, or ``None`` for every case (``""``, a
    unit no one belongs to, for a user who may read no case)."""
    if actor.holds(P.CASE_READ_ALL):
        return None
    return actor.unit if actor.holds(P.CASE_READ_UNIT) else ""


def check_may_read(actor: Actor, *, exchange_id: str, filed_by_unit: str | None) -> None:
    """Raises: OutsideUnitError, unless ``actor`` may read the case."""
    if not may_read_case(actor, filed_by_unit=filed_by_unit):
        raise OutsideUnitError(
            f"request {exchange_id} is not one unit {actor.unit!r} filed; investigators "
            "see the requests of their own unit"
        )


def check_may_act(
    actor: Actor, *, outbound: bool, exchange_id: str, filed_by_unit: str | None
) -> None:
    """Whether ``actor`` may send this node's next message in a case: the requester's side
    (outbound) needs ``request.file`` and the case's unit, the requested side ``request.review``.

    Raises:
        AccessDeniedError, OutsideUnitError.
    """
    needed = P.REQUEST_FILE if outbound else P.REQUEST_REVIEW
    if not actor.holds(needed):
        side = "outbound (ours)" if outbound else "inbound"
        raise AccessDeniedError(
            f"user {actor.name!r} may not act on {side} request {exchange_id}: it needs "
            f"{needed} (roles: {_roles(actor)})"
        )
    if outbound and not actor.holds(P.CASE_READ_ALL):
        check_may_read(actor, exchange_id=exchange_id, filed_by_unit=filed_by_unit)


def _roles(actor: Actor) -> str:
    return ", ".join(sorted(actor.roles)) or "none"
