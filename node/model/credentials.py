# SPDX-License-Identifier: Apache-2.0
"""The rules of console sign-in, without I/O: the password policy, TOTP codes, the shape of
session tokens, and the refusals a sign-in can meet.

Refusals before the password is proven (a wrong password, an unknown user, a locked name)
say nothing about whether the user exists; the others (a wrong one-time code, a disabled
user, no second factor enrolled) reach only someone who knew the password.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import pyotp

from node.errors import ComityError, ErrorKind

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
"""Longer input is refused before hashing: it could only be an attempt to waste the node's
time and memory."""
TOTP_STEP_S = 30
TOTP_DRIFT_STEPS = 1
"""Codes of the step before and after the current one are accepted (a clock off by <30 s)."""
SESSION_PREFIX = "cses"
SESSION_ID_HEX = 16


class WeakPasswordError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "weak_password"


class BadPasswordError(ComityError):
    """A wrong password, or a user name with no user or no password behind it."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_password"


class BadTotpError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_totp"


class TotpNotEnrolledError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "totp_not_enrolled"


class SignInLockedError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "sign_in_locked"


class BadSessionError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_session"


class SessionExpiredError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "session_expired"


class SessionRevokedError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "session_revoked"


WRONG_PASSWORD = "the user name or the password is wrong"  # noqa: S105 (a message)


def check_password(name: str, password: str) -> str:
    """``password`` if the policy allows it for user ``name``.

    Raises:
        WeakPasswordError: shorter than 12 characters, longer than 1024, or holding the
            user name (in any case).
    """
    if len(password) < MIN_PASSWORD:
        raise WeakPasswordError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPasswordError(f"a password has at most {MAX_PASSWORD} characters")
    if name.casefold() in password.casefold():
        raise WeakPasswordError("a password must not contain the user name")
    if not password.isprintable():
        raise WeakPasswordError("a password is printable characters only")
    return password


def totp_step(seed: str, code: str, *, now_ms: int, last_step: int | None) -> int | None:
    """The time step whose code ``code`` is, within the allowed drift and after
    ``last_step`` (a code is good once); ``None`` if it is none of them."""
    code = code.replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(seed, interval=TOTP_STEP_S)
    current = now_ms // 1000 // TOTP_STEP_S
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def totp_uri(seed: str, *, user: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(seed, interval=TOTP_STEP_S).provisioning_uri(name=user, issuer_name=issuer)


@dataclass(frozen=True)
class SessionToken:
    session_id: str
    secret: str

    def __str__(self) -> str:
        return f"{SESSION_PREFIX}_{self.session_id}_{self.secret}"


def is_session_token(token: str) -> bool:
    return token.strip().startswith(SESSION_PREFIX + "_")


def parse_session_token(token: str) -> SessionToken:
    """Raises: BadSessionError, unless ``token`` reads ``cses_<id>_<secret>``."""
    prefix, _, rest = token.strip().partition("_")
    session_id, _, secret = rest.partition("_")
    if prefix != SESSION_PREFIX or len(session_id) != SESSION_ID_HEX or not secret:
        raise BadSessionError("a session token reads cses_<id>_<secret>, as SignIn returns it")
    return SessionToken(session_id, secret)
