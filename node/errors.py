# SPDX-License-Identifier: Apache-2.0
"""The error model of Comity, and the errors that several layers raise.

Every error Comity raises on purpose derives from one base class, :class:`ComityError`, with
a text for people (:meth:`diagnostics`) and a stable machine-readable ``code``. Each class
names the kind of failure; the transport maps kinds to gRPC status codes in exactly one place
(``node.transport.status``) and the command line catches the base class once
(``node.cli.main``), so neither needs to know the individual classes.

This module holds the errors shared across layers (malformed input, identity and
authenticity, state, environment). An error that one module alone raises is declared beside
that module: ``node.audit.verify.AuditError``, ``node.audit.proof.BundleError``,
``node.services.witness.WitnessConflictError`` and the indicator errors in ``node.indicators``
are some of them; ``tests/test_errors.py`` checks that every one derives from
:class:`ComityError` with a code of its own. Messages name what was wrong (a field, a rule, an
id) and never carry case content or personal data, because they travel to peers and land in
logs.
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    """What sort of failure an error is; decides the gRPC status it maps to."""

    INVALID_INPUT = "invalid_input"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    PRECONDITION = "precondition"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    OVERLOADED = "overloaded"
    INTERNAL = "internal"


class ComityError(Exception):
    """Base of all deliberate Comity errors."""

    kind: ErrorKind = ErrorKind.INTERNAL
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        """A text for people: what went wrong, and the stable error code."""
        return f"{self.message} [{self.code}]"

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """gRPC trailers the error carries to its caller besides its code (none by default)."""
        return ()


# --- malformed or unacceptable input -------------------------------------------------------


class MalformedError(ComityError):
    """Bytes or fields that do not parse or break the wire format's rules."""

    kind = ErrorKind.INVALID_INPUT
    code = "malformed"


class MisaddressedError(ComityError):
    """An envelope addressed to another agency than this node."""

    kind = ErrorKind.INVALID_INPUT
    code = "misaddressed"


class FormValidationError(ComityError):
    """A request form that fails its JSON Schema or its canonicalisation rules."""

    kind = ErrorKind.INVALID_INPUT
    code = "form_invalid"


class UnknownRequestTypeError(ComityError):
    """A request type or payload type this node does not know."""

    kind = ErrorKind.INVALID_INPUT
    code = "unknown_request_type"


class UnknownAgencyError(ComityError):
    """A recipient that is not a member of the federation (local use)."""

    kind = ErrorKind.INVALID_INPUT
    code = "unknown_agency"


# --- identity and authenticity --------------------------------------------------------------


class UnknownSenderError(ComityError):
    """A sender that is not a member of the federation."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "unknown_sender"


class UnknownKeyError(ComityError):
    """A key id that the membership does not list for the agency that claims it."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "unknown_key"


class SignatureError(ComityError):
    """A signature that is missing or does not verify."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_signature"


class SealError(ComityError):
    """A sealed payload that does not open with the expected keys (tampered or misrouted)."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "seal_broken"


class PeerIdentityError(ComityError):
    """The mutual-TLS peer is not the agency the envelope claims as its sender."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "peer_not_sender"


class ReceiptError(ComityError):
    """A receipt that does not verify or does not match what was sent."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_receipt"


# --- state ----------------------------------------------------------------------------------


class FreshnessError(ComityError):
    """An envelope outside its validity window (expired, or created in the future)."""

    kind = ErrorKind.PRECONDITION
    code = "not_fresh"


class SupersededDirectoryError(ComityError):
    """An envelope addressed under a federation membership version this node superseded."""

    kind = ErrorKind.PRECONDITION
    code = "superseded_directory"


class DirectoryError(ComityError):
    """A federation directory that breaks one of the trust rules; ``rule`` names which one.

    Rules: malformed, duplicate-json-key, unknown-field, duplicate-root-key, bad-threshold,
    duplicate-member, duplicate-member-key, duplicate-signature, missing-key, bad-validity,
    threshold, new-root-threshold, rollback, expired, not-listed.
    """

    kind = ErrorKind.PRECONDITION
    code = "directory_rejected"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"directory refused ({rule}): {message}")
        self.rule = rule


class RevokedKeyError(ComityError):
    """A message signed by a key that the directory revoked or that is outside its validity."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "key_revoked"


class DirectoryBehindError(ComityError):
    """An envelope addressed under a directory version this node does not trust yet."""

    kind = ErrorKind.UNAVAILABLE
    code = "directory_behind"


class ReplayError(ComityError):
    """A message id seen before with different content."""

    kind = ErrorKind.CONFLICT
    code = "replayed_message_id"


class NotFoundError(ComityError):
    """A request or record that does not exist."""

    kind = ErrorKind.NOT_FOUND
    code = "not_found"


# --- environment ----------------------------------------------------------------------------


class PeerUnavailableError(ComityError):
    """A peer node that could not be reached or did not answer in time."""

    kind = ErrorKind.UNAVAILABLE
    code = "peer_unavailable"


class StorageUnavailableError(ComityError):
    """The database could not be reached or refused the write."""

    kind = ErrorKind.UNAVAILABLE
    code = "storage_unavailable"


class OverloadedError(ComityError):
    """The node is at capacity and refuses new work for now."""

    kind = ErrorKind.OVERLOADED
    code = "overloaded"


class ConfigError(ComityError):
    """A configuration, key or membership file that is missing or invalid."""

    kind = ErrorKind.INVALID_INPUT
    code = "config_invalid"


class PeerRejectedError(ComityError):
    """A peer node refused a delivery; carries the peer's status and reason."""

    code = "peer_rejected"

    def __init__(self, message: str, *, kind: ErrorKind, peer_code: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.peer_code = peer_code
