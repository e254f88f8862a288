# SPDX-License-Identifier: Apache-2.0
"""Sign-in through the agency's OpenID Connect provider: the production way into the console.

:meth:`OidcService.start` hands the console an authorization URL with a fresh state, nonce and
PKCE verifier (kept in the database for 10 minutes, so any replica can finish the sign-in);
:meth:`OidcService.finish` takes the code and state the provider sent back, uses the state
once, exchanges the code, checks the ID token (signature against the provider's keys,
issuer, audience, nonce, lifetime), maps its claims to an existing Comity user and roles,
and opens a session as a password sign-in would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from authlib.common.security import generate_token

from node.errors import NotFoundError
from node.model.oidc import (
    OidcConfig,
    OidcStateError,
    OidcTokenError,
    OidcUnknownUserError,
    map_claims,
    verify_id_token,
)
from node.services.credentials import CredentialService, NewSession
from node.services.people import UserDisabledError
from node.storage import credential_repo as repo
from node.storage.credential_tables import OidcLoginRow
from node.storage.database import Database
from node.storage.engine import transaction

LOGIN_MS = 10 * 60_000


class OidcProvider(Protocol):
    """The HTTP side of the provider (``node.transport.oidc_client.OidcHttpClient``)."""

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str: ...

    async def exchange(self, *, code: str, code_verifier: str) -> str: ...

    async def key_set(self, *, refresh: bool = False) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class OidcStart:
    url: str
    """Where the console sends the person's browser."""
    state: str
    """Comes back with the code; the console keeps it to tie the answer to the browser."""


class OidcService:
    def __init__(
        self,
        *,
        database: Database,
        credentials: CredentialService,
        config: OidcConfig,
        provider: OidcProvider,
        clock: Callable[[], int],
    ) -> None:
        self._database = database
        self._credentials = credentials
        self._config = config
        self._provider = provider
        self._clock = clock

    async def start(self) -> OidcStart:
        """A new sign-in at the provider.

        Raises:
            OidcProviderError: its discovery document cannot be read.
        """
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        url = await self._provider.authorization_url(
            state=state, nonce=nonce, code_verifier=verifier
        )
        now = self._clock()
        row = OidcLoginRow(
            state_sha256=_sha256(state),
            nonce=nonce,
            code_verifier=verifier,
            expires_at_ms=now + LOGIN_MS,
        )

        def work() -> None:
            with transaction(self._database.engine) as session:
                repo.add_oidc_login(session, row, now)

        await self._database.run(work)
        return OidcStart(url=url, state=state)

    async def finish(self, *, code: str, state: str) -> NewSession:
        """A session for the user the provider vouched for.

        Raises:
            OidcStateError, OidcCodeError, OidcProviderError, OidcTokenError,
            OidcUnknownUserError, OidcNoRoleError.
        """
        nonce, verifier = await self._take(state)
        id_token = await self._provider.exchange(code=code, code_verifier=verifier)
        claims = await self._verified(id_token, nonce)
        name, roles = map_claims(claims, self._config)
        try:
            return await self._credentials.open_session(name, method="oidc", roles=roles)
        except (NotFoundError, UserDisabledError) as e:
            raise OidcUnknownUserError(
                "the identity provider vouched for someone who is not an enabled user of "
                "this node; an admin adds them with `comity users add`"
            ) from e

    async def _take(self, state: str) -> tuple[str, str]:
        now = self._clock()

        def work() -> tuple[str, str, int] | None:
            with transaction(self._database.engine) as session:
                return repo.take_oidc_login(session, _sha256(state))

        taken = await self._database.run(work)
        if taken is None or taken[2] <= now:
            raise OidcStateError(
                "this sign-in was not started here, took too long, or was finished already; "
                "start again"
            )
        return taken[0], taken[1]

    async def _verified(self, id_token: str, nonce: str) -> dict[str, Any]:
        now_s = self._clock() // 1000
        keys = await self._provider.key_set()
        try:
            return verify_id_token(id_token, keys, config=self._config, nonce=nonce, now_s=now_s)
        except OidcTokenError:
            # The provider may have rotated its keys since they were fetched: once more, fresh.
            keys = await self._provider.key_set(refresh=True)
            return verify_id_token(id_token, keys, config=self._config, nonce=nonce, now_s=now_s)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
