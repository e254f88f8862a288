# SPDX-License-Identifier: Apache-2.0
"""The Credentials service of the local socket: signing in and out, passwords, TOTP."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import local_credentials_pb2 as pb
from node.gen.comity.v1 import local_credentials_pb2_grpc
from node.model.oidc import OidcNotConfiguredError
from node.services.credentials import CredentialService, NewSession
from node.services.oidc import OidcService

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Credentials"].full_name


class CredentialsServicer(local_credentials_pb2_grpc.CredentialsServicer):
    def __init__(self, credentials: CredentialService, oidc: OidcService | None) -> None:
        self._credentials = credentials
        self._oidc = oidc

    async def SignIn(self, request: pb.SignInRequest, _context: Context) -> pb.Session:  # noqa: N802 (the name is the RPC's)
        made = await self._credentials.sign_in(request.name, request.password, request.totp_code)
        return session_to_proto(made)

    async def SignOut(  # noqa: N802
        self, request: pb.SignOutRequest, _context: Context
    ) -> pb.SignOutResponse:
        await self._credentials.sign_out(request.token)
        return pb.SignOutResponse()

    async def StartOidcSignIn(  # noqa: N802
        self, _request: pb.StartOidcSignInRequest, _context: Context
    ) -> pb.OidcStart:
        started = await self._configured().start()
        return pb.OidcStart(authorization_url=started.url, state=started.state)

    async def SignInOidc(  # noqa: N802
        self, request: pb.SignInOidcRequest, _context: Context
    ) -> pb.Session:
        made = await self._configured().finish(code=request.code, state=request.state)
        return session_to_proto(made)

    async def SetPassword(  # noqa: N802
        self, request: pb.SetPasswordRequest, _context: Context
    ) -> pb.SetPasswordResponse:
        await self._credentials.set_password(
            request.name, request.password, current=request.current_password or None
        )
        return pb.SetPasswordResponse()

    async def EnrolTotp(  # noqa: N802
        self, request: pb.EnrolTotpRequest, _context: Context
    ) -> pb.TotpEnrolment:
        return pb.TotpEnrolment(otpauth_uri=await self._credentials.enrol_totp(request.name))

    async def Unlock(self, request: pb.UnlockRequest, _context: Context) -> pb.UnlockResponse:  # noqa: N802
        return pb.UnlockResponse(was_locked=await self._credentials.unlock(request.name))

    def _configured(self) -> OidcService:
        if self._oidc is None:
            raise OidcNotConfiguredError(
                "this node has no [oidc] section: sign in with a password and a one-time code"
            )
        return self._oidc


def session_to_proto(made: NewSession) -> pb.Session:
    return pb.Session(
        token=made.token,
        session_id=made.session_id,
        name=made.name,
        expires_at_ms=made.expires_at_ms,
        idle_timeout_ms=made.idle_ms,
    )
