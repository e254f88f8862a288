# SPDX-License-Identifier: Apache-2.0
"""OpenID Connect sign-in, without I/O: its configuration, checking an ID token against the
provider's keys, and mapping its claims to a Comity user and roles.

The flow is the authorization code flow with PKCE (RFC 7636, S256) and a nonce; the HTTP
side (discovery, the token endpoint, the key set) is in ``node.transport.oidc_client``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from node.errors import ComityError, ErrorKind
from node.model.people import USER_NAME, Role

ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
"""Asymmetric algorithms only: an ID token signed with the client secret (HS256) or not at all
(``none``) is refused."""
LEEWAY_S = 60
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class OidcNotConfiguredError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "oidc_not_configured"


class OidcStateError(ComityError):
    """A state the node did not hand out, handed out long ago, or used already."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "oidc_bad_state"


class OidcTokenError(ComityError):
    """An ID token with a bad signature, issuer, audience, nonce or lifetime."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "oidc_bad_id_token"


class OidcCodeError(ComityError):
    """The provider refused to exchange the authorization code."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "oidc_code_refused"


class OidcProviderError(ComityError):
    """The provider could not be reached or answered nonsense."""

    kind = ErrorKind.UNAVAILABLE
    code = "oidc_provider_unavailable"


class OidcUnknownUserError(ComityError):
    """The provider vouched for someone who is not a (enabled) user of this node."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "oidc_unknown_user"


class OidcNoRoleError(ComityError):
    """The provider's role claim maps to no Comity role."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "oidc_no_role"


@dataclass(frozen=True, kw_only=True)
class OidcConfig:
    """``[oidc]`` of the node's configuration."""

    issuer: str
    client_id: str
    client_secret_file: Path
    redirect_uri: str
    username_claim: str = "preferred_username"
    roles_claim: str | None = None
    """The claim listing the user's groups or roles at the provider; without it a session
    carries the Comity user's own roles."""
    role_map: Mapping[str, frozenset[Role]] = field(default_factory=dict)
    """A value of ``roles_claim`` -> the Comity roles it grants."""
    scopes: tuple[str, ...] = ("openid", "profile")

    def __post_init__(self) -> None:
        """Raises: ComityError (the config loader names the file) for an insecure issuer."""
        for name, url in (("issuer", self.issuer), ("redirect_uri", self.redirect_uri)):
            parts = urlsplit(url)
            loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
            if not (parts.scheme == "https" and parts.hostname) and not loopback:
                raise ComityError(f"oidc.{name} must be an https:// URL (http only on loopback)")
        if "openid" not in self.scopes:
            raise ComityError("oidc.scopes must include openid")


def verify_id_token(
    id_token: str,
    keys: Mapping[str, Any],
    *,
    config: OidcConfig,
    nonce: str,
    now_s: int,
) -> dict[str, Any]:
    """The claims of ``id_token`` once its signature verifies with one of ``keys`` (a JWKS)
    and its issuer, audience, authorized party, nonce and lifetime are what they must be.

    Raises:
        OidcTokenError: naming the check that failed (never the token itself).
    """
    try:
        key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]
        token = jwt.decode(id_token, key_set, algorithms=ID_TOKEN_ALGORITHMS)
    except JoseError as e:
        raise OidcTokenError(f"the ID token does not verify ({e.error})") from e
    except (ValueError, TypeError) as e:
        raise OidcTokenError("the ID token or the provider's key set is malformed") from e
    registry = jwt.JWTClaimsRegistry(
        now=now_s,
        leeway=LEEWAY_S,
        iss={"essential": True, "value": config.issuer},
        aud={"essential": True, "value": config.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(token.claims)
    except JoseError as e:
        raise OidcTokenError(
            f"the ID token's claims are refused ({e.error}: {e.description})"
        ) from e
    audiences = token.claims["aud"]
    several = isinstance(audiences, list) and len(audiences) > 1
    if several and token.claims.get("azp") != config.client_id:
        raise OidcTokenError("the ID token names several audiences but not us as its azp")
    return dict(token.claims)


def map_claims(claims: Mapping[str, Any], config: OidcConfig) -> tuple[str, frozenset[Role] | None]:
    """The Comity user name the claims name, and the roles they grant (``None``: the user's
    own, when no role claim is configured).

    Raises:
        OidcUnknownUserError: the user-name claim is missing or not a user name.
        OidcNoRoleError: the role claim grants no Comity role.
    """
    name = claims.get(config.username_claim)
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise OidcUnknownUserError(
            f"the provider's {config.username_claim!r} claim is not a Comity user name"
        )
    if config.roles_claim is None:
        return name, None
    held = claims.get(config.roles_claim, [])
    values = [held] if isinstance(held, str) else held if isinstance(held, list) else []
    roles: set[Role] = set()
    for value in values:
        if isinstance(value, str):
            roles |= config.role_map.get(value, frozenset())
    if not roles:
        raise OidcNoRoleError(
            f"the provider's {config.roles_claim!r} claim grants no Comity role (see "
            "[oidc.role_map] of the node's configuration)"
        )
    return name, frozenset(roles)
