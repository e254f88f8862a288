# SPDX-License-Identifier: Apache-2.0
"""A small OpenID Connect provider over real HTTP on loopback, for the sign-in tests.

It serves discovery, its key set, the authorization endpoint (which signs in whoever the
test says is at the browser and redirects with a code) and the token endpoint (client
authentication, PKCE S256, one use per code), and signs ID tokens with an RSA key. The test
can make it misbehave the ways a provider or an attacker might: sign with another key, name
another audience, hand out an expired token.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "comity-node"
CLIENT_SECRET = "provider-client-secret-1f0c"
REDIRECT_URI = "http://127.0.0.1:9/oidc/callback"


@dataclass
class Provider:
    """What the provider does; the test changes it between sign-ins."""

    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    claims: dict[str, Any] = field(default_factory=dict)
    """Of the person at the browser: ``preferred_username``, groups, ..."""
    signing_key: RSAKey | None = None
    """Sign with this key instead of the published one (a forged token)."""
    audience: str = CLIENT_ID
    lifetime_s: int = 300
    issued_ago_s: int = 0
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    id_tokens: list[str] = field(default_factory=list)
    """Every ID token it handed out (the tests look for them in logs)."""

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect back to the client, with a code for the person at the browser."""
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return _with(query["redirect_uri"], error="unauthorized_client")
        if query.get("code_challenge_method") != "S256" or "openid" not in query["scope"]:
            return _with(query["redirect_uri"], error="invalid_request")
        code = secrets.token_urlsafe(16)
        self.codes[code] = dict(query)
        return _with(query["redirect_uri"], code=code, state=query["state"])

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        request = self.codes.pop(form.get("code", ""), None)
        if request is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        challenge = create_s256_code_challenge(form.get("code_verifier", ""))
        if (
            challenge != request["code_challenge"]
            or form.get("redirect_uri") != request["redirect_uri"]
        ):
            return 400, {"error": "invalid_grant"}
        now = int(time.time()) - self.issued_ago_s
        claims = {
            "iss": self.issuer,
            "sub": secrets.token_hex(8),
            "aud": self.audience,
            "iat": now,
            "exp": now + self.lifetime_s,
            "nonce": request["nonce"],
            **self.claims,
        }
        key = self.signing_key or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        self.id_tokens.append(id_token)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                     "expires_in": 300, "id_token": id_token}  # fmt: skip


def _with(url: str, **params: str) -> str:
    return f"{url}?{urlencode(params)}"


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif parts.path == "/jwks":
                self._json(200, {"keys": [provider.key.as_dict(private=False)]})
            elif parts.path == "/authorize":
                self.send_response(302)
                self.send_header("Location", provider.authorize(query))
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            self._json(*provider.token(form, self.headers.get("Authorization", "")))

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet: the tests read the node's logs, not the provider's

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    """The provider, serving on a free loopback port until the block ends."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
