# SPDX-License-Identifier: Apache-2.0
"""The node's side of HTTP with the agency's OpenID Connect provider: discovery, the
authorization URL (Authlib, with PKCE S256), the code exchange at the token endpoint
(Authlib's client, authenticating with the client secret), and the provider's key set.

Blocking ``requests`` calls run in a thread, each with a timeout. Discovery and the key set are
fetched once and kept; the key set is fetched again when a token names a key it lacks (the
provider rotated its keys). Nothing here logs: the code, the client secret and the tokens
pass through only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from node.model.oidc import OidcCodeError, OidcConfig, OidcProviderError

TIMEOUT_S = 10.0
DISCOVERY = "/.well-known/openid-configuration"


class OidcHttpClient:
    def __init__(self, *, config: OidcConfig, timeout_s: float = TIMEOUT_S) -> None:
        self._config = config
        self._timeout_s = timeout_s
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, Any] | None = None

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        endpoint = str((await self._discovered())["authorization_endpoint"])
        url, _ = self._session().create_authorization_url(
            endpoint, state=state, nonce=nonce, code_verifier=code_verifier
        )
        return str(url)

    async def exchange(self, *, code: str, code_verifier: str) -> str:
        """The ID token the provider gives for ``code``.

        Raises:
            OidcCodeError: the provider refused the code (unknown, used, or PKCE mismatch).
            OidcProviderError: it could not be reached or gave no ID token.
        """
        endpoint = str((await self._discovered())["token_endpoint"])

        def fetch() -> dict[str, Any]:
            with self._session() as session:
                return dict(
                    session.fetch_token(
                        endpoint,
                        grant_type="authorization_code",
                        code=code,
                        code_verifier=code_verifier,
                        timeout=self._timeout_s,
                    )
                )

        try:
            token = await asyncio.to_thread(fetch)
        except OAuthError as e:
            raise OidcCodeError(f"the identity provider refused the code ({e.error})") from e
        except (requests.RequestException, ValueError) as e:
            raise OidcProviderError(
                f"the identity provider's token endpoint failed ({type(e).__name__})"
            ) from e
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcProviderError("the identity provider answered without an ID token")
        return id_token

    async def key_set(self, *, refresh: bool = False) -> dict[str, Any]:
        """The provider's JSON Web Key Set."""
        if self._keys is None or refresh:
            uri = str((await self._discovered())["jwks_uri"])
            self._keys = await self._get_json(uri)
        return self._keys

    async def _discovered(self) -> dict[str, Any]:
        if self._metadata is None:
            metadata = await self._get_json(self._config.issuer.rstrip("/") + DISCOVERY)
            if metadata.get("issuer") != self._config.issuer:
                raise OidcProviderError(
                    "the identity provider's discovery document names another issuer than "
                    "oidc.issuer"
                )
            for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(metadata.get(needed), str):
                    raise OidcProviderError(f"the provider's discovery document lacks {needed}")
            self._metadata = metadata
        return self._metadata

    async def _get_json(self, url: str) -> dict[str, Any]:
        def get() -> Any:
            response = requests.get(url, timeout=self._timeout_s)
            response.raise_for_status()
            return response.json()

        try:
            document = await asyncio.to_thread(get)
        except (requests.RequestException, ValueError) as e:
            raise OidcProviderError(
                f"cannot read {url} from the identity provider ({type(e).__name__})"
            ) from e
        if not isinstance(document, dict):
            raise OidcProviderError(f"{url} is not a JSON object")
        return document

    def _session(self) -> OAuth2Session:
        config = self._config
        return OAuth2Session(
            client_id=config.client_id,
            client_secret=_read_secret(config),
            scope=" ".join(config.scopes),
            redirect_uri=config.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method's name)
        )


def _read_secret(config: OidcConfig) -> str:
    try:
        return config.client_secret_file.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise OidcProviderError(
            f"cannot read oidc.client_secret_file {config.client_secret_file}: {e.strerror}"
        ) from e
