# SPDX-License-Identifier: Apache-2.0
"""Idempotent filing: a key the caller makes once per request it means to file.

A call to file a request can end without its caller learning the outcome (the node died
after storing the request, the connection broke before the answer). Repeating the call under
the same key answers with the request filed under it, if any, instead of filing it a second
time; the key with a different request is refused, so a reused key never hides a request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from node.errors import ComityError, ErrorKind, MalformedError
from node.ids import AgencyId

MAX_KEY_CHARS = 128
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,%d}" % MAX_KEY_CHARS)  # noqa: UP031 (regex braces)


class IdempotencyKeyReusedError(ComityError):
    """The key was used to file a different request."""

    kind = ErrorKind.CONFLICT
    code = "idempotency_key_reused"


@dataclass(frozen=True, kw_only=True)
class FilingKey:
    """A caller's idempotency key and the digest of what it asked to file under it."""

    key: str
    digest: bytes

    @classmethod
    def of(
        cls,
        key: str,
        *,
        request_type: str,
        recipient: AgencyId,
        form_json: bytes,
        strip: bool,
        campaign_id: str | None,
    ) -> FilingKey:
        """The key for a filing call, checked.

        Raises:
            MalformedError: the key is empty, too long or has other characters.
        """
        if _KEY.fullmatch(key) is None:
            raise MalformedError(
                f"an idempotency key is 1 to {MAX_KEY_CHARS} characters of A-Z a-z 0-9 . _ : -"
            )
        asked = {
            "request_type": request_type,
            "recipient": recipient,
            "form_sha256": hashlib.sha256(form_json).hexdigest(),
            "strip": strip,
            "campaign_id": campaign_id or "",
        }
        canonical = json.dumps(asked, sort_keys=True, separators=(",", ":")).encode()
        return cls(key=key, digest=hashlib.sha256(canonical).digest())

    def check_same(self, stored_digest: bytes | None, exchange_id: str) -> None:
        """Raise unless the request filed under this key is the one asked for now.

        Raises:
            IdempotencyKeyReusedError: it was filed with another type, recipient, form or
                options.
        """
        if stored_digest != self.digest:
            raise IdempotencyKeyReusedError(
                f"idempotency key {self.key!r} was used to file request {exchange_id}, with a "
                "different type, recipient, form or options; use a new key for a new request"
            )
