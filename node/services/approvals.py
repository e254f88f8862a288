# SPDX-License-Identifier: Apache-2.0
"""Four-eyes approval: actions the node's policy holds until a supervisor approves them.

When a person (not the node itself) asks for an action the policy names
(:class:`~node.model.approvals.Policy`), nothing takes effect: the local operation and its
request, serialised as the person sent it, wait in the approvals queue, and the caller gets
:class:`ApprovalRequiredError` with the approval's id. A supervisor other than the person who
asked approves it (the action then runs once, as the person who asked, with
:attr:`Actor.approved_by <node.model.people.Actor.approved_by>` naming the supervisor) or
rejects it with a reason. Deciding is one conditional update, so of two supervisors approving
at once exactly one runs the action. An approval that was claimed but whose run was cut short
(the node stopped) stays ``approved`` and is never run again: at most once, never twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Never

from node.errors import ComityError, ErrorKind, NotFoundError, UnknownRequestTypeError
from node.forms.registry import traits_of
from node.model.approvals import (
    DAY_MS,
    DEFAULT_EXPIRE_DAYS,
    ApprovalStatus,
    Policy,
    filing_policy,
    message_policy,
    release_policy,
    share_policy,
    shown_status,
)
from node.model.people import Actor, Permission, Via
from node.services.access import acting_as, check_operation, current_actor, require
from node.services.indicators import IndicatorService
from node.services.people import PeopleService
from node.storage import approval_repo as repo
from node.storage.approval_tables import MAX_REASON_CHARS, MAX_SUMMARY_CHARS, ApprovalRow
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import MAX_ERROR_CHARS

APPROVAL_TRAILER = "comity-approval-id"
"""The trailer that carries the approval id with an ``approval_required`` refusal."""
MAX_LIST = 500

Runner = Callable[[str, bytes], Awaitable[bytes]]
"""Runs a held local operation (by its method name) on its serialised request, as whoever is
acting, and returns its serialised answer."""


class ApprovalRequiredError(ComityError):
    """The action waits for a supervisor's approval; nothing has taken effect yet."""

    kind = ErrorKind.PRECONDITION
    code = "approval_required"

    def __init__(self, approval_id: str) -> None:
        super().__init__(
            f"pending approval {approval_id}; a supervisor runs: "
            f"comity approvals approve {approval_id}"
        )
        self.approval_id = approval_id

    def trailers(self) -> tuple[tuple[str, str], ...]:
        return ((APPROVAL_TRAILER, self.approval_id),)


class SelfApprovalError(ComityError):
    kind = ErrorKind.PERMISSION_DENIED
    code = "self_approval"


class ApprovalDecidedError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "approval_decided"


class ApprovalExpiredError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "approval_expired"


class ApprovalReasonError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_reason"


@dataclass(frozen=True, kw_only=True)
class ApprovalSettings:
    required: frozenset[Policy]
    expire_days: int = DEFAULT_EXPIRE_DAYS


# What an action is about, as far as the policy cares.
@dataclass(frozen=True, kw_only=True)
class FilingAction:
    request_type: str
    recipient: str


@dataclass(frozen=True, kw_only=True)
class MessageAction:
    request_id: str
    kind: str
    body_json: bytes


@dataclass(frozen=True, kw_only=True)
class ReleaseAction:
    target: str
    role: str
    order: str


@dataclass(frozen=True, kw_only=True)
class ShareAction:
    set_id: str
    recipient: str


Action = FilingAction | MessageAction | ReleaseAction | ShareAction


@dataclass(frozen=True, kw_only=True)
class ApprovalView:
    approval_id: str
    operation: str
    request: bytes
    policy: str
    summary: str
    status: ApprovalStatus
    requested_by: str
    requester_unit: str
    requested_at_ms: int
    expires_at_ms: int
    decided_by: str | None
    decided_at_ms: int | None
    reason: str | None
    error_code: str | None
    error_message: str | None
    finished_at_ms: int | None
    result: bytes | None
    """The operation's answer: shown to the person who asked and the one who approved."""


class ApprovalService:
    def __init__(
        self,
        *,
        database: Database,
        people: PeopleService,
        indicators: IndicatorService,
        settings: ApprovalSettings,
        clock: Callable[[], int],
    ) -> None:
        self._database = database
        self._people = people
        self._indicators = indicators
        self._settings = settings
        self._clock = clock

    # --- holding ------------------------------------------------------------------------

    async def check(self, operation: str, action: Action, request: bytes) -> None:
        """Let the action run now, or hold it for a supervisor.

        Raises:
            ApprovalRequiredError: a person asked for an action the policy holds; it is queued.
        """
        actor = current_actor()
        if not actor.is_person or actor.approved_by is not None:
            return
        held = await self._held(action)
        if held is not None and held[0] in self._settings.required:
            await self._hold(actor, operation, request, *held)

    async def _held(self, action: Action) -> tuple[Policy, str] | None:
        """The policy the action falls under and a summary for the supervisor, if any."""
        policy: Policy | None
        match action:
            case FilingAction(request_type=kind, recipient=to):
                policy, summary = _filing(kind), f"file a {kind} request to {to}"
            case MessageAction(request_id=request_id, kind=kind, body_json=body):
                policy = message_policy(kind, _object(body))
                summary = f"refuse request {request_id} on the ground protected_expression"
            case ReleaseAction(target=target, role=role, order=order):
                policy = release_policy(role)
                summary = f"release the audit openings of {target} to a court (order {order})"
            case ShareAction(set_id=set_id, recipient=to):
                label = await self._label_of(set_id)
                policy, summary = share_policy(label), f"share indicator set {set_id} ({label})"
                summary += f" with {to}"
        return None if policy is None else (policy, summary[:MAX_SUMMARY_CHARS])

    async def _label_of(self, set_id: str) -> str:
        try:
            return (await self._indicators.get(set_id)).indicator_set.tlp.value
        except NotFoundError:
            return ""  # the action itself says so when it runs

    async def _hold(
        self, actor: Actor, operation: str, request: bytes, policy: Policy, summary: str
    ) -> Never:
        now = self._clock()
        row = ApprovalRow(
            approval_id=str(uuid.uuid4()),
            operation=operation,
            request=request,
            policy=policy.value,
            summary=summary,
            requested_by=actor.name,
            requester_unit=actor.unit,
            requester_via=actor.via.value,
            requested_at_ms=now,
            expires_at_ms=now + self._settings.expire_days * DAY_MS,
            status=ApprovalStatus.PENDING.value,
        )

        def work() -> None:
            with transaction(self._database.engine) as session:
                repo.add(session, row)

        await self._database.run(work)
        raise ApprovalRequiredError(row.approval_id)

    # --- reading ------------------------------------------------------------------------

    async def list_approvals(
        self, *, status: ApprovalStatus | None, requested_by: str | None, limit: int
    ) -> list[ApprovalView]:
        """Approvals, newest first: every one for a supervisor, one's own for anyone else."""
        actor = current_actor()
        if not actor.holds(Permission.APPROVAL_DECIDE):
            requested_by = actor.name
        now = self._clock()

        def work() -> list[ApprovalRow]:
            with transaction(self._database.engine) as session:
                return repo.list_approvals(
                    session,
                    statuses=_stored(status),
                    requested_by=requested_by,
                    limit=min(max(limit, 1), MAX_LIST),
                )

        views = [self._view(row, actor, now) for row in await self._database.run(work)]
        return [v for v in views if status is None or v.status is status]

    async def get(self, approval_id: str) -> ApprovalView:
        """Raises: NotFoundError (also for another person's approval, to a non-supervisor)."""
        actor = current_actor()
        row = await self._load(approval_id, actor)
        return self._view(row, actor, self._clock())

    async def _load(self, approval_id: str, actor: Actor) -> ApprovalRow:
        def work() -> ApprovalRow | None:
            with transaction(self._database.engine) as session:
                return repo.get(session, approval_id)

        row = await self._database.run(work)
        visible = actor.holds(Permission.APPROVAL_DECIDE) or (
            row is not None and row.requested_by == actor.name
        )
        if row is None or not visible:
            raise NotFoundError(f"no approval {approval_id[:36]!r} that you may see")
        return row

    def _view(self, row: ApprovalRow, actor: Actor, now: int) -> ApprovalView:
        status = shown_status(
            ApprovalStatus(row.status), expires_at_ms=row.expires_at_ms, now_ms=now
        )
        sees_result = actor.name in {row.requested_by, row.decided_by}
        return ApprovalView(
            approval_id=row.approval_id,
            operation=row.operation,
            request=row.request,
            policy=row.policy,
            summary=row.summary,
            status=status,
            requested_by=row.requested_by,
            requester_unit=row.requester_unit,
            requested_at_ms=row.requested_at_ms,
            expires_at_ms=row.expires_at_ms,
            decided_by=row.decided_by,
            decided_at_ms=row.decided_at_ms,
            reason=row.reason,
            error_code=row.error_code,
            error_message=row.error_message,
            finished_at_ms=row.finished_at_ms,
            result=row.result if sees_result else None,
        )

    # --- deciding -----------------------------------------------------------------------

    async def approve(self, approval_id: str, reason: str | None, run: Runner) -> ApprovalView:
        """Approve a pending action and run it, once, as the person who asked for it.

        Raises:
            AccessDeniedError: the caller is not a supervisor.
            SelfApprovalError: the caller asked for the action.
            ApprovalDecidedError, ApprovalExpiredError, NotFoundError, ApprovalReasonError.
        """
        approver = require(Permission.APPROVAL_DECIDE)
        row = await self._load(approval_id, approver)
        if row.requested_by == approver.name:
            raise SelfApprovalError(
                f"user {approver.name!r} asked for approval {approval_id} and may not approve "
                "it: a different supervisor must"
            )
        await self._decide(row, approver, ApprovalStatus.APPROVED, _reason(reason, needed=False))
        await self._run(row, approver, run)
        return await self.get(approval_id)

    async def reject(self, approval_id: str, reason: str) -> ApprovalView:
        """Raises: AccessDeniedError, ApprovalReasonError, ApprovalDecidedError,
        ApprovalExpiredError, NotFoundError."""
        decider = require(Permission.APPROVAL_DECIDE)
        text = _reason(reason, needed=True)
        row = await self._load(approval_id, decider)
        await self._decide(row, decider, ApprovalStatus.REJECTED, text)
        return await self.get(approval_id)

    async def _decide(
        self, row: ApprovalRow, decider: Actor, status: ApprovalStatus, reason: str | None
    ) -> None:
        now = self._clock()

        def work() -> ApprovalRow | None:
            with transaction(self._database.engine) as session:
                if repo.decide(
                    session,
                    row.approval_id,
                    status=status,
                    decided_by=decider.name,
                    reason=reason,
                    now_ms=now,
                ):
                    return None
                return repo.get(session, row.approval_id)

        current = await self._database.run(work)
        if current is None:
            return
        if current.status == ApprovalStatus.PENDING.value:
            raise ApprovalExpiredError(
                f"approval {row.approval_id} expired unapproved; the person who asked may ask again"
            )
        raise ApprovalDecidedError(
            f"approval {row.approval_id} is {current.status} already (by {current.decided_by})"
        )

    async def _run(self, row: ApprovalRow, approver: Actor, run: Runner) -> None:
        """Run the claimed action as its requester, and record how it ended."""
        try:
            requester = await self._people.actor_of(row.requested_by, Via(row.requester_via))
            check_operation(requester, row.operation)
            with _approved(requester, approver):
                result = await run(row.operation, row.request)
        except ComityError as e:
            await self._finish(row, ApprovalStatus.FAILED, error=e)
        except Exception:
            await self._finish(row, ApprovalStatus.FAILED, error=_INTERNAL)
            raise
        else:
            await self._finish(row, ApprovalStatus.DONE, result=result)

    async def _finish(
        self,
        row: ApprovalRow,
        status: ApprovalStatus,
        *,
        result: bytes | None = None,
        error: ComityError | None = None,
    ) -> None:
        now = self._clock()

        def work() -> None:
            with transaction(self._database.engine) as session:
                repo.finish(
                    session,
                    row.approval_id,
                    status=status,
                    now_ms=now,
                    result=result,
                    error_code=error.code if error else None,
                    error_message=error.message[:MAX_ERROR_CHARS] if error else None,
                )

        await self._database.run(work)


_INTERNAL = ComityError("internal error; see the node's log")


def _approved(requester: Actor, approver: Actor) -> AbstractContextManager[Actor]:
    return acting_as(replace(requester, approved_by=approver.name))


def _filing(request_type: str) -> Policy | None:
    try:
        return filing_policy(traits_of(request_type))
    except UnknownRequestTypeError:
        return None  # refused with its own error when it runs


def _object(body_json: bytes) -> dict[str, Any]:
    try:
        body = json.loads(body_json)
    except (ValueError, UnicodeDecodeError):
        return {}  # refused with its own error when it runs
    return body if isinstance(body, dict) else {}


def _stored(status: ApprovalStatus | None) -> frozenset[ApprovalStatus] | None:
    """The stored statuses a shown status comes from (expired is a pending one past its time)."""
    if status is None:
        return None
    return frozenset({ApprovalStatus.PENDING if status is ApprovalStatus.EXPIRED else status})


def _reason(reason: str | None, *, needed: bool) -> str | None:
    text = (reason or "").strip()
    if needed and not text:
        raise ApprovalReasonError("a rejection states its reason (--reason)")
    if len(text) > MAX_REASON_CHARS:
        raise ApprovalReasonError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    return text or None
