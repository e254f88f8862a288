# SPDX-License-Identifier: Apache-2.0
"""A blocking client of the local node's Local service, for the CLI."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.errors import ComityError, ConfigError, ErrorKind
from node.gen.comity.v1 import audit_pb2, local_pb2, local_pb2_grpc
from node.transport.channel_options import LOCAL_OPTIONS
from node.transport.status import ERROR_TRAILER, INTERNAL_CODE

LOCAL_CALL_TIMEOUT_S = 60.0
REACH_TIMEOUT_S = 5.0
UPLOAD_TIMEOUT_S = 1800.0
"""Up to 256 MiB of evidence from a slow disk."""
UPLOAD_PIECE_BYTES = 256 * 1024
PAGE_LIMIT = 1000
"""Requests per page when the CLI reads every page."""
OVERLAP_TIMEOUT_S = 600.0
"""An overlap check of large sets is seconds of arithmetic at each end."""

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Readable(Protocol):
    """What evidence is read from: an open file, a pipe."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, kw_only=True)
class UploadFile:
    """A file the caller opened (with its own rights) to stream as evidence."""

    name: str
    media_type: str
    stream: Readable


class LocalNodeUnreachableError(ComityError):
    kind = ErrorKind.UNAVAILABLE
    code = "local_node_unreachable"


class OutcomeUnknownError(ComityError):
    """A call that changes something was cut off after it reached the node: whether the
    change was made is unknown. Repeating it under the same idempotency key is safe."""

    kind = ErrorKind.UNAVAILABLE
    code = "outcome_unknown"

    def __init__(self, message: str, *, idempotency_key: str) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key


class LocalNodeError(ComityError):
    """The local node refused or failed a call; ``code`` is the node's error code."""

    def __init__(self, message: str, *, kind: ErrorKind, code: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


class LocalClient:
    def __init__(self, socket: Path) -> None:
        self._socket = socket
        self._channel = grpc.insecure_channel(f"unix:{socket}", options=LOCAL_OPTIONS)
        self._stub = local_pb2_grpc.LocalStub(self._channel)

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
        idempotency_key: str | None = None,
    ) -> local_pb2.RequestDetail:
        """File a request. With ``idempotency_key``, a call that ends without an answer
        (the node died, the connection broke) raises :class:`OutcomeUnknownError`: repeating
        it under the same key is safe.

        Raises:
            LocalNodeUnreachableError: the node was not reached; nothing was filed.
            OutcomeUnknownError: the node was reached, then stopped answering.
            LocalNodeError: the node refused the request.
        """
        request = local_pb2.FileRequestRequest(
            request_type=request_type,
            recipient=recipient,
            form_json=form_json,
            strip_identifiers=strip,
            campaign_id=campaign_id or "",
            idempotency_key=idempotency_key or "",
        )
        if idempotency_key is None:
            return self._call(self._stub.FileRequest, request)
        self.check_reachable()  # before this, a failure means nothing was sent
        try:
            return self._stub.FileRequest(request, timeout=LOCAL_CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            error = _error_from(e, self._socket)
            if _outcome_unknown(e):
                raise OutcomeUnknownError(
                    f"the local node stopped answering before it said whether the request "
                    f"was filed ({_status_name(e)}); it may have been. Repeating the call "
                    f"with idempotency key {idempotency_key} is safe: it files the request "
                    "if it was not filed, and shows it if it was",
                    idempotency_key=idempotency_key,
                ) from e
            raise error from e

    def check_reachable(self) -> None:
        """Raise unless the node answers its health check now.

        Raises:
            LocalNodeUnreachableError: it does not.
        """
        try:
            health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=REACH_TIMEOUT_S
            )
        except grpc.RpcError as e:
            raise _unreachable(self._socket) from e

    def preview_request(
        self, *, request_type: str, recipient: str, form_json: bytes, strip: bool = False
    ) -> local_pb2.RequestPreview:
        request = local_pb2.FileRequestRequest(
            request_type=request_type,
            recipient=recipient,
            form_json=form_json,
            strip_identifiers=strip,
        )
        return self._call(self._stub.PreviewRequest, request)

    def overdue(self) -> local_pb2.ListRequestsResponse:
        return self._call(self._stub.ListOverdue, local_pb2.ListOverdueRequest())

    def list_requests(
        self, *, direction: local_pb2.Direction.ValueType, limit: int, page_token: str = ""
    ) -> local_pb2.ListRequestsResponse:
        """One page of requests, newest first; its ``next_page_token`` asks for the next."""
        request = local_pb2.ListRequestsRequest(
            direction=direction, limit=limit, page_token=page_token
        )
        return self._call(self._stub.ListRequests, request)

    def all_requests(
        self, *, direction: local_pb2.Direction.ValueType
    ) -> Iterator[local_pb2.RequestSummary]:
        """Every request, newest first, page after page."""
        token = ""
        while True:
            page = self.list_requests(direction=direction, limit=PAGE_LIMIT, page_token=token)
            yield from page.requests
            token = page.next_page_token
            if not token:
                return

    def node_status(self) -> local_pb2.NodeStatus:
        return self._call(self._stub.GetNodeStatus, local_pb2.GetNodeStatusRequest())

    def get_request(self, request_id: str) -> local_pb2.RequestDetail:
        return self._call(self._stub.GetRequest, local_pb2.GetRequestRequest(request_id=request_id))

    def send_message(
        self, *, request_id: str, kind: str, body_json: bytes
    ) -> local_pb2.RequestDetail:
        request = local_pb2.SendMessageRequest(
            request_id=request_id, kind=kind, body_json=body_json
        )
        return self._call(self._stub.SendMessage, request)

    def upload_evidence(
        self, *, request_id: str, files: Sequence[UploadFile], note: str | None
    ) -> local_pb2.RequestDetail:
        """Stream files this process opened to the node as one set of evidence: the header,
        then each file's bytes in pieces (never a whole file in memory).

        Raises:
            ConfigError: a file could not be read while streaming (the upload is cancelled,
                nothing is stored).
            LocalNodeError: the node refused the set (its size, a name, the request's state).
        """
        failed: list[OSError] = []

        def messages() -> Iterator[local_pb2.EvidenceUpload]:
            yield local_pb2.EvidenceUpload(
                header=local_pb2.EvidenceUploadHeader(
                    request_id=request_id,
                    files=[
                        local_pb2.EvidenceUploadFile(name=f.name, media_type=f.media_type)
                        for f in files
                    ],
                    note=note or "",
                )
            )
            for number, file in enumerate(files):
                while True:
                    try:
                        data = file.stream.read(UPLOAD_PIECE_BYTES)
                    except OSError as e:
                        failed.append(e)
                        raise  # cancels the call: an incomplete set must not be stored
                    if not data:
                        break
                    yield local_pb2.EvidenceUpload(
                        data=local_pb2.EvidenceUploadData(file=number, data=data)
                    )

        try:
            return self._stub.UploadEvidence(messages(), timeout=UPLOAD_TIMEOUT_S)
        except grpc.RpcError as e:
            if failed:
                raise ConfigError(f"cannot read evidence: {failed[0].strerror}") from e
            raise _error_from(e, self._socket) from e

    def list_evidence(self, request_id: str) -> local_pb2.EvidenceList:
        request = local_pb2.GetRequestRequest(request_id=request_id)
        return self._call(self._stub.ListEvidence, request)

    def fetch_evidence(self, *, request_id: str, evidence_id: str, item: int) -> Iterator[bytes]:
        """The file's bytes, chunk by chunk, as the node re-verifies them."""
        request = local_pb2.FetchEvidenceRequest(
            request_id=request_id, evidence_id=evidence_id, item=item
        )
        try:
            for message in self._stub.FetchEvidence(request, timeout=LOCAL_CALL_TIMEOUT_S):
                yield message.data
        except grpc.RpcError as e:
            raise _error_from(e, self._socket) from e

    def install_directory(self, document: bytes) -> local_pb2.InstallDirectoryResponse:
        request = local_pb2.InstallDirectoryRequest(document=document)
        return self._call(self._stub.InstallDirectory, request)

    def prove_record(
        self, *, target: str, role: str, reason: str, order: str | None, recipient: str | None
    ) -> audit_pb2.ProofBundles:
        request = local_pb2.ProveRecordRequest(
            target=target, role=role, reason=reason, order=order or "", recipient=recipient or ""
        )
        return self._call(self._stub.ProveRecord, request)

    def erase_expired(self) -> local_pb2.ErasureSummary:
        return self._call(self._stub.EraseExpired, local_pb2.EraseExpiredRequest())

    def create_indicator_set(
        self, *, tlp: str, recipients: list[str], clients: dict[str, list[str]]
    ) -> local_pb2.IndicatorSetView:
        request = local_pb2.CreateIndicatorSetRequest(
            tlp=tlp,
            recipients=recipients,
            clients=[local_pb2.ClientGrant(recipient=r, clients=c) for r, c in clients.items()],
        )
        return self._call(self._stub.CreateIndicatorSet, request)

    def add_indicators(
        self, set_id: str, entries: list[local_pb2.IndicatorEntry]
    ) -> local_pb2.IndicatorSetView:
        request = local_pb2.AddIndicatorsRequest(set_id=set_id, indicators=entries)
        return self._call(self._stub.AddIndicators, request)

    def list_indicator_sets(self) -> local_pb2.IndicatorSetList:
        return self._call(self._stub.ListIndicatorSets, local_pb2.ListIndicatorSetsRequest())

    def get_indicator_set(self, set_id: str) -> local_pb2.IndicatorSetView:
        request = local_pb2.GetIndicatorSetRequest(set_id=set_id)
        return self._call(self._stub.GetIndicatorSet, request)

    def share_indicator_set(self, set_id: str, recipient: str) -> local_pb2.IndicatorSetView:
        request = local_pb2.ShareIndicatorSetRequest(set_id=set_id, recipient=recipient)
        return self._call(self._stub.ShareIndicatorSet, request)

    def revoke_indicator_set(self, set_id: str) -> local_pb2.IndicatorSetView:
        request = local_pb2.GetIndicatorSetRequest(set_id=set_id)
        return self._call(self._stub.RevokeIndicatorSet, request)

    def check_overlap(self, agency: str, set_ids: list[str]) -> local_pb2.OverlapCount:
        request = local_pb2.CheckOverlapRequest(agency=agency, set_ids=set_ids)
        return self._call(self._stub.CheckOverlap, request, timeout_s=OVERLAP_TIMEOUT_S)

    def ask_reveal(
        self, *, agency: str, reason: str, set_ids: list[str], valid_ms: int
    ) -> local_pb2.RevealRequestView:
        request = local_pb2.AskRevealRequest(
            agency=agency, reason=reason, set_ids=set_ids, valid_ms=valid_ms
        )
        return self._call(self._stub.AskReveal, request)

    def list_reveal_requests(self) -> local_pb2.RevealRequestList:
        return self._call(self._stub.ListRevealRequests, local_pb2.ListRevealRequestsRequest())

    def decide_reveal(self, request_id: str, *, consent: bool) -> local_pb2.RevealRequestView:
        request = local_pb2.DecideRevealRequest(request_id=request_id, consent=consent)
        return self._call(self._stub.DecideReveal, request)

    def reveal_overlap(self, request_id: str) -> local_pb2.RevealedOverlap:
        request = local_pb2.RevealOverlapRequest(request_id=request_id)
        return self._call(self._stub.RevealOverlap, request, timeout_s=OVERLAP_TIMEOUT_S)

    def create_campaign(self, name: str, campaign_id: str) -> local_pb2.CampaignView:
        request = local_pb2.CreateCampaignRequest(name=name, campaign_id=campaign_id)
        return self._call(self._stub.CreateCampaign, request)

    def detect_campaigns(self, name: str) -> local_pb2.CampaignDetection:
        request = local_pb2.DetectCampaignsRequest(name=name)
        return self._call(self._stub.DetectCampaigns, request)

    def link_campaign_agency(
        self, campaign_id: str, agency: str, set_ids: list[str]
    ) -> local_pb2.CampaignLink:
        request = local_pb2.LinkCampaignAgencyRequest(
            campaign_id=campaign_id, agency=agency, set_ids=set_ids
        )
        return self._call(self._stub.LinkCampaignAgency, request, timeout_s=OVERLAP_TIMEOUT_S)

    def list_campaigns(self) -> local_pb2.CampaignList:
        return self._call(self._stub.ListCampaigns, local_pb2.ListCampaignsRequest())

    def get_campaign(self, campaign_id: str) -> local_pb2.CampaignView:
        request = local_pb2.GetCampaignRequest(campaign_id=campaign_id)
        return self._call(self._stub.GetCampaign, request)

    def alert_campaign(
        self, campaign_id: str, form_json: bytes, recipients: list[str]
    ) -> local_pb2.CampaignAlerts:
        request = local_pb2.AlertCampaignRequest(
            campaign_id=campaign_id, form_json=form_json, recipients=recipients
        )
        return self._call(self._stub.AlertCampaign, request)

    def change_benign_values(
        self, add: list[local_pb2.IndicatorEntry], remove: list[local_pb2.IndicatorEntry]
    ) -> local_pb2.BenignValues:
        request = local_pb2.ChangeBenignValuesRequest(add=add, remove=remove)
        return self._call(self._stub.ChangeBenignValues, request)

    def match_pdq(self, pdq_hash: str, max_distance: int) -> local_pb2.PdqMatches:
        request = local_pb2.MatchPdqRequest(hash=pdq_hash, max_distance=max_distance)
        return self._call(self._stub.MatchPdq, request)

    def report_sighting(
        self, set_id: str, *, indicator: tuple[str, str], kind: str, note: str | None
    ) -> local_pb2.SightingView:
        kind_name, value = indicator
        request = local_pb2.ReportSightingRequest(
            set_id=set_id, type=kind_name, value=value, kind=kind, note=note
        )
        return self._call(self._stub.ReportSighting, request)

    def list_sightings(self, set_id: str) -> local_pb2.SightingList:
        request = local_pb2.GetIndicatorSetRequest(set_id=set_id)
        return self._call(self._stub.ListSightings, request)

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        *,
        timeout_s: float = LOCAL_CALL_TIMEOUT_S,
    ) -> Resp:
        try:
            return method(request, timeout=timeout_s)
        except grpc.RpcError as e:
            raise _error_from(e, self._socket) from e


def _error_from(error: grpc.RpcError, socket: Path) -> ComityError:
    if not isinstance(error, grpc.Call):
        return LocalNodeError(str(error), kind=ErrorKind.INTERNAL, code="internal_error")
    code = error.code()
    details = error.details() or code.name
    trailer = _trailer(error)
    if trailer is None and code == grpc.StatusCode.UNAVAILABLE:
        return _unreachable(socket)
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


def _trailer(error: grpc.Call) -> str | None:
    return next(
        (str(value) for key, value in error.trailing_metadata() or () if key == ERROR_TRAILER),
        None,
    )


def _unreachable(socket: Path) -> LocalNodeUnreachableError:
    return LocalNodeUnreachableError(
        f"cannot reach the local node at {socket}: is `comity node serve` running?"
    )


# Statuses with which a call can end after the node took it, without the node's answer: the
# connection broke or the node died (no Comity error code), or the call ran out of time.
_CUT_OFF = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


def _outcome_unknown(error: grpc.RpcError) -> bool:
    """Whether a failed call may have had its effect: it was cut off rather than refused (a
    refusal carries the node's error code; an unexpected error may come after the commit)."""
    if not isinstance(error, grpc.Call) or error.code() not in _CUT_OFF:
        return False
    return _trailer(error) in {None, INTERNAL_CODE}


def _status_name(error: grpc.RpcError) -> str:
    return error.code().name if isinstance(error, grpc.Call) else "no status"
