# SPDX-License-Identifier: Apache-2.0
"""A blocking client of the local node's Local service, for the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import grpc

from node.config import load_config
from node.errors import ComityError, ConfigError, ErrorKind
from node.gen.comity.v1 import audit_pb2, local_pb2, local_pb2_grpc, local_people_pb2_grpc
from node.transport.channel_options import LOCAL_OPTIONS
from node.transport.identity import TICKET_METADATA, fetch_ticket
from node.transport.status import ERROR_TRAILER

LOCAL_CALL_TIMEOUT_S = 60.0
OVERLAP_TIMEOUT_S = 600.0
"""An overlap check of large sets is seconds of arithmetic at each end."""

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class LocalNodeUnreachableError(ComityError):
    kind = ErrorKind.UNAVAILABLE
    code = "local_node_unreachable"


class LocalNodeError(ComityError):
    """The local node refused or failed a call; ``code`` is the node's error code."""

    def __init__(self, message: str, *, kind: ErrorKind, code: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


class LocalClient:
    """Calls the local node as the user the caller signs in as (see :func:`sign_in`)."""

    def __init__(self, socket: Path, *, token: str | None = None) -> None:
        self._socket = socket
        self._channel = grpc.insecure_channel(f"unix:{socket}", options=LOCAL_OPTIONS)
        self.channel: grpc.Channel = self._channel
        """For stubs of the other local services, called through :meth:`call`."""
        self._stub = local_pb2_grpc.LocalStub(self._channel)
        self.people = local_people_pb2_grpc.PeopleStub(self._channel)
        self.approvals = local_people_pb2_grpc.ApprovalsStub(self._channel)
        self._token = token
        self._signed_in: Metadata | None = None

    @property
    def _metadata(self) -> Metadata:
        """Asked of the node at the first call, on the thread that makes it."""
        if self._signed_in is None:
            self._signed_in = sign_in(self._socket, self._token)
        return self._signed_in

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._channel.close()

    def file_request(
        self,
        *,
        request_type: str,
        recipient: str,
        form_json: bytes,
        strip: bool = False,
        campaign_id: str | None = None,
    ) -> local_pb2.RequestDetail:
        request = local_pb2.FileRequestRequest(
            request_type=request_type,
            recipient=recipient,
            form_json=form_json,
            strip_identifiers=strip,
            campaign_id=campaign_id or "",
        )
        return self.call(self._stub.FileRequest, request)

    def preview_request(
        self, *, request_type: str, recipient: str, form_json: bytes, strip: bool = False
    ) -> local_pb2.RequestPreview:
        request = local_pb2.FileRequestRequest(
            request_type=request_type,
            recipient=recipient,
            form_json=form_json,
            strip_identifiers=strip,
        )
        return self.call(self._stub.PreviewRequest, request)

    def overdue(self) -> local_pb2.ListRequestsResponse:
        return self.call(self._stub.ListOverdue, local_pb2.ListOverdueRequest())

    def list_requests(
        self, *, direction: local_pb2.Direction.ValueType, limit: int
    ) -> local_pb2.ListRequestsResponse:
        request = local_pb2.ListRequestsRequest(direction=direction, limit=limit)
        return self.call(self._stub.ListRequests, request)

    def node_status(self) -> local_pb2.NodeStatus:
        return self.call(self._stub.GetNodeStatus, local_pb2.GetNodeStatusRequest())

    def access_log(self, request: local_pb2.AccessLogRequest) -> local_pb2.AccessLogResponse:
        return self.call(self._stub.AccessLog, request)

    def get_request(self, request_id: str) -> local_pb2.RequestDetail:
        return self.call(self._stub.GetRequest, local_pb2.GetRequestRequest(request_id=request_id))

    def send_message(
        self, *, request_id: str, kind: str, body_json: bytes
    ) -> local_pb2.RequestDetail:
        request = local_pb2.SendMessageRequest(
            request_id=request_id, kind=kind, body_json=body_json
        )
        return self.call(self._stub.SendMessage, request)

    def send_evidence(
        self, *, request_id: str, files: list[tuple[str, str]], note: str | None
    ) -> local_pb2.RequestDetail:
        request = local_pb2.SendEvidenceRequest(
            request_id=request_id,
            files=[local_pb2.EvidenceFile(path=p, media_type=m) for p, m in files],
            note=note or "",
        )
        return self.call(self._stub.SendEvidence, request)

    def list_evidence(self, request_id: str) -> local_pb2.EvidenceList:
        request = local_pb2.GetRequestRequest(request_id=request_id)
        return self.call(self._stub.ListEvidence, request)

    def fetch_evidence(self, *, request_id: str, evidence_id: str, item: int) -> Iterator[bytes]:
        """The file's bytes, chunk by chunk, as the node re-verifies them."""
        request = local_pb2.FetchEvidenceRequest(
            request_id=request_id, evidence_id=evidence_id, item=item
        )
        try:
            for message in self._stub.FetchEvidence(
                request, timeout=LOCAL_CALL_TIMEOUT_S, metadata=self._metadata
            ):
                yield message.data
        except grpc.RpcError as e:
            raise _error_from(e, self._socket) from e

    def install_directory(self, document: bytes) -> local_pb2.InstallDirectoryResponse:
        request = local_pb2.InstallDirectoryRequest(document=document)
        return self.call(self._stub.InstallDirectory, request)

    def prove_record(
        self, *, target: str, role: str, reason: str, order: str | None, recipient: str | None
    ) -> audit_pb2.ProofBundles:
        request = local_pb2.ProveRecordRequest(
            target=target, role=role, reason=reason, order=order or "", recipient=recipient or ""
        )
        return self.call(self._stub.ProveRecord, request)

    def erase_expired(self) -> local_pb2.ErasureSummary:
        return self.call(self._stub.EraseExpired, local_pb2.EraseExpiredRequest())

    def create_indicator_set(
        self, *, tlp: str, recipients: list[str], clients: dict[str, list[str]]
    ) -> local_pb2.IndicatorSetView:
        request = local_pb2.CreateIndicatorSetRequest(
            tlp=tlp,
            recipients=recipients,
            clients=[local_pb2.ClientGrant(recipient=r, clients=c) for r, c in clients.items()],
        )
        return self.call(self._stub.CreateIndicatorSet, request)

    def add_indicators(
        self, set_id: str, entries: list[local_pb2.IndicatorEntry]
    ) -> local_pb2.IndicatorSetView:
        request = local_pb2.AddIndicatorsRequest(set_id=set_id, indicators=entries)
        return self.call(self._stub.AddIndicators, request)

    def list_indicator_sets(self) -> local_pb2.IndicatorSetList:
        return self.call(self._stub.ListIndicatorSets, local_pb2.ListIndicatorSetsRequest())

    def get_indicator_set(self, set_id: str) -> local_pb2.IndicatorSetView:
        request = local_pb2.GetIndicatorSetRequest(set_id=set_id)
        return self.call(self._stub.GetIndicatorSet, request)

    def share_indicator_set(self, set_id: str, recipient: str) -> local_pb2.IndicatorSetView:
        request = local_pb2.ShareIndicatorSetRequest(set_id=set_id, recipient=recipient)
        return self.call(self._stub.ShareIndicatorSet, request)

    def revoke_indicator_set(self, set_id: str) -> local_pb2.IndicatorSetView:
        request = local_pb2.GetIndicatorSetRequest(set_id=set_id)
        return self.call(self._stub.RevokeIndicatorSet, request)

    def check_overlap(self, agency: str, set_ids: list[str], reason: str) -> local_pb2.OverlapCount:
        request = local_pb2.CheckOverlapRequest(agency=agency, set_ids=set_ids, reason=reason)
        return self.call(self._stub.CheckOverlap, request, timeout_s=OVERLAP_TIMEOUT_S)

    def ask_reveal(
        self, *, agency: str, reason: str, set_ids: list[str], valid_ms: int
    ) -> local_pb2.RevealRequestView:
        request = local_pb2.AskRevealRequest(
            agency=agency, reason=reason, set_ids=set_ids, valid_ms=valid_ms
        )
        return self.call(self._stub.AskReveal, request)

    def list_reveal_requests(self) -> local_pb2.RevealRequestList:
        return self.call(self._stub.ListRevealRequests, local_pb2.ListRevealRequestsRequest())

    def decide_reveal(self, request_id: str, *, consent: bool) -> local_pb2.RevealRequestView:
        request = local_pb2.DecideRevealRequest(request_id=request_id, consent=consent)
        return self.call(self._stub.DecideReveal, request)

    def reveal_overlap(self, request_id: str) -> local_pb2.RevealedOverlap:
        request = local_pb2.RevealOverlapRequest(request_id=request_id)
        return self.call(self._stub.RevealOverlap, request, timeout_s=OVERLAP_TIMEOUT_S)

    def create_campaign(self, name: str, campaign_id: str) -> local_pb2.CampaignView:
        request = local_pb2.CreateCampaignRequest(name=name, campaign_id=campaign_id)
        return self.call(self._stub.CreateCampaign, request)

    def detect_campaigns(self, name: str) -> local_pb2.CampaignDetection:
        request = local_pb2.DetectCampaignsRequest(name=name)
        return self.call(self._stub.DetectCampaigns, request)

    def link_campaign_agency(
        self, campaign_id: str, agency: str, set_ids: list[str]
    ) -> local_pb2.CampaignLink:
        request = local_pb2.LinkCampaignAgencyRequest(
            campaign_id=campaign_id, agency=agency, set_ids=set_ids
        )
        return self.call(self._stub.LinkCampaignAgency, request, timeout_s=OVERLAP_TIMEOUT_S)

    def list_campaigns(self) -> local_pb2.CampaignList:
        return self.call(self._stub.ListCampaigns, local_pb2.ListCampaignsRequest())

    def get_campaign(self, campaign_id: str) -> local_pb2.CampaignView:
        request = local_pb2.GetCampaignRequest(campaign_id=campaign_id)
        return self.call(self._stub.GetCampaign, request)

    def alert_campaign(
        self, campaign_id: str, form_json: bytes, recipients: list[str]
    ) -> local_pb2.CampaignAlerts:
        request = local_pb2.AlertCampaignRequest(
            campaign_id=campaign_id, form_json=form_json, recipients=recipients
        )
        return self.call(self._stub.AlertCampaign, request)

    def change_benign_values(
        self, add: list[local_pb2.IndicatorEntry], remove: list[local_pb2.IndicatorEntry]
    ) -> local_pb2.BenignValues:
        request = local_pb2.ChangeBenignValuesRequest(add=add, remove=remove)
        return self.call(self._stub.ChangeBenignValues, request)

    def match_pdq(self, pdq_hash: str, max_distance: int) -> local_pb2.PdqMatches:
        request = local_pb2.MatchPdqRequest(hash=pdq_hash, max_distance=max_distance)
        return self.call(self._stub.MatchPdq, request)

    def report_sighting(
        self, set_id: str, *, indicator: tuple[str, str], kind: str, note: str | None
    ) -> local_pb2.SightingView:
        kind_name, value = indicator
        request = local_pb2.ReportSightingRequest(
            set_id=set_id, type=kind_name, value=value, kind=kind, note=note
        )
        return self.call(self._stub.ReportSighting, request)

    def list_sightings(self, set_id: str) -> local_pb2.SightingList:
        request = local_pb2.GetIndicatorSetRequest(set_id=set_id)
        return self.call(self._stub.ListSightings, request)

    def call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        *,
        timeout_s: float = LOCAL_CALL_TIMEOUT_S,
    ) -> Resp:
        """``method`` (of any local service) called as the signed-in user."""
        try:
            return method(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error_from(e, self._socket) from e


def local_socket(config_path: Path) -> Path:
    """The local socket: ``$COMITY_SOCKET`` if set (officers, who cannot read the node's own
    configuration, set it), else the one the node's configuration names."""
    named = os.environ.get("COMITY_SOCKET")
    return Path(named) if named else load_config(config_path).local_socket


Metadata = tuple[tuple[str, str | bytes], ...]


def sign_in(socket: Path, token: str | None = None) -> Metadata:
    """The metadata that signs local calls in: a service token (``token``, else
    ``$COMITY_TOKEN``, else the file ``$COMITY_TOKEN_FILE`` names), or else a login ticket
    from the node's identity socket, which stands for the login running this process."""
    token = token or os.environ.get("COMITY_TOKEN") or _token_from_file()
    if token:
        return (("authorization", f"Bearer {token}"),)
    ticket = fetch_ticket(socket)
    return ((TICKET_METADATA, ticket),) if ticket else ()


def _token_from_file() -> str | None:
    path = os.environ.get("COMITY_TOKEN_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as e:
        raise ConfigError(f"cannot read COMITY_TOKEN_FILE {path}: {e.strerror}") from e


def _error_from(error: grpc.RpcError, socket: Path) -> ComityError:
    if not isinstance(error, grpc.Call):
        return LocalNodeError(str(error), kind=ErrorKind.INTERNAL, code="internal_error")
    code = error.code()
    details = error.details() or code.name
    trailer = next(
        (value for key, value in error.trailing_metadata() or () if key == ERROR_TRAILER), None
    )
    if trailer is None and code == grpc.StatusCode.UNAVAILABLE:
        return LocalNodeUnreachableError(
            f"cannot reach the local node at {socket}: is `comity node serve` running?"
        )
    kind = {
        grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.INVALID_INPUT,
        grpc.StatusCode.NOT_FOUND: ErrorKind.NOT_FOUND,
        grpc.StatusCode.UNAVAILABLE: ErrorKind.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind.OVERLOADED,
        grpc.StatusCode.PERMISSION_DENIED: ErrorKind.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION: ErrorKind.PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS: ErrorKind.CONFLICT,
        grpc.StatusCode.UNAUTHENTICATED: ErrorKind.UNAUTHENTICATED,
    }.get(code, ErrorKind.INTERNAL)
    return LocalNodeError(details, kind=kind, code=str(trailer or code.name.lower()))
