# SPDX-License-Identifier: Apache-2.0
"""The Local service's sharing-group calls, for the ``comity groups`` commands."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import local_groups_pb2 as pb
from node.ids import AgencyId
from node.services.group_views import GroupView, SyncOutcome
from node.services.groups import GroupService

Context = grpc.aio.ServicerContext[Any, Any]


class LocalGroups:
    """Mixed into LocalServicer: it sets ``_groups``."""

    _groups: GroupService

    async def CreateGroup(  # noqa: N802 (the names are the RPCs')
        self, request: pb.CreateGroupRequest, _context: Context
    ) -> pb.GroupView:
        return group_view(
            await self._groups.create(request.name, [AgencyId(m) for m in request.members])
        )

    async def ListGroups(  # noqa: N802
        self, _request: pb.ListGroupsRequest, _context: Context
    ) -> pb.GroupList:
        views = await self._groups.list_groups()
        return pb.GroupList(groups=[group_view(v) for v in views])

    async def RotateGroup(  # noqa: N802
        self, request: pb.RotateGroupRequest, _context: Context
    ) -> pb.GroupView:
        rotated = await self._groups.rotate(
            request.group_id,
            [AgencyId(a) for a in request.remove],
            [AgencyId(a) for a in request.add],
        )
        return group_view(rotated)

    async def PublishToGroup(  # noqa: N802
        self, request: pb.PublishToGroupRequest, _context: Context
    ) -> pb.GroupView:
        return group_view(await self._groups.publish(request.group_id, request.set_id))

    async def SyncGroups(  # noqa: N802
        self, request: pb.SyncGroupsRequest, _context: Context
    ) -> pb.SyncGroupsResponse:
        outcomes = await self._groups.sync(request.group_id or None)
        return pb.SyncGroupsResponse(outcomes=[_outcome(o) for o in outcomes])

    async def GroupMatches(  # noqa: N802
        self, request: pb.GroupMatchesRequest, _context: Context
    ) -> pb.GroupMatchList:
        found = await self._groups.matches(request.group_id)
        return pb.GroupMatchList(
            group_id=found.group.group_id,
            epoch=found.group.epoch,
            matches=[
                pb.GroupTagMatch(type=m.type, value=m.value, agencies=list(m.agencies))
                for m in found.matches
            ],
        )


def group_view(view: GroupView) -> pb.GroupView:
    g = view.group
    return pb.GroupView(
        group_id=g.group_id,
        name=g.name,
        owner=g.owner,
        members=list(g.members),
        epoch=g.epoch,
        published_sets=list(view.published_sets),
        own_seq=view.own_seq,
        undelivered=list(view.undelivered),
    )


def _outcome(outcome: SyncOutcome) -> pb.GroupSyncOutcome:
    answer = pb.GroupSyncOutcome(
        group_id=outcome.group_id,
        publisher=outcome.publisher,
        fetched=outcome.fetched,
        held_seq=outcome.held_seq,
    )
    if outcome.error is not None:
        answer.error_code = outcome.error.code
        answer.error = outcome.error.message
    return answer
