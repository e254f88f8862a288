# SPDX-License-Identifier: Apache-2.0
"""Sign-in over time, on a real database with the clock in the test's hands: a lock lifts
after 15 minutes, a session ends 8 hours after its last use and 12 hours after it began."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine

from node.ids import AgencyId
from node.model.credentials import BadPasswordError, SessionExpiredError, SignInLockedError
from node.model.people import Role
from node.services.credentials import CredentialService, credential_key
from node.services.people import PeopleService
from node.storage.database import Database

HOUR_MS = 3_600_000
PASSWORD = "a long enough password"


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(engine: Engine, tmp_path: Path, clock: Clock) -> AsyncIterator[CredentialService]:
    database = Database(engine)
    people = PeopleService(database=database, clock=clock, agency_id=AgencyId("aa-cyber-unit"))
    await people.add_user(name="kadri", unit="Cyber Unit", roles={Role.REVIEWER}, os_user=None)
    yield CredentialService(
        database=database,
        clock=clock,
        seal_key=credential_key(tmp_path),
        issuer="Comity test",
        hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
    )
    database.close()


async def _ready(service: CredentialService) -> pyotp.TOTP:
    await service.set_password("kadri", PASSWORD, current=None)
    totp = pyotp.parse_uri(await service.enrol_totp("kadri"))
    assert isinstance(totp, pyotp.TOTP)
    return totp


def _code(totp: pyotp.TOTP, clock: Clock) -> str:
    return totp.at(clock.now_ms // 1000)


async def test_a_lock_lifts_after_fifteen_minutes(service: CredentialService, clock: Clock) -> None:
    totp = await _ready(service)
    for _ in range(5):
        with pytest.raises(BadPasswordError):
            await service.sign_in("kadri", "not the right one", "000000")
    clock.now_ms += 14 * 60_000
    with pytest.raises(SignInLockedError):
        await service.sign_in("kadri", PASSWORD, _code(totp, clock))
    clock.now_ms += 60_000
    session = await service.sign_in("kadri", PASSWORD, _code(totp, clock))
    assert session.name == "kadri"


async def test_a_session_ends_after_eight_idle_hours(
    service: CredentialService, clock: Clock
) -> None:
    totp = await _ready(service)
    session = await service.sign_in("kadri", PASSWORD, _code(totp, clock))
    clock.now_ms += 4 * HOUR_MS
    assert (await service.identify_session(session.token)).name == "kadri"  # used: idle anew
    clock.now_ms += 8 * HOUR_MS - 1
    assert (await service.identify_session(session.token)).roles == {Role.REVIEWER}

    idle = await service.sign_in("kadri", PASSWORD, _code(totp, clock))
    clock.now_ms += 8 * HOUR_MS
    with pytest.raises(SessionExpiredError):
        await service.identify_session(idle.token)


async def test_a_session_ends_twelve_hours_after_it_began_however_used(
    service: CredentialService, clock: Clock
) -> None:
    totp = await _ready(service)
    session = await service.sign_in("kadri", PASSWORD, _code(totp, clock))
    for _ in range(11):
        clock.now_ms += HOUR_MS
        await service.identify_session(session.token)
    clock.now_ms += HOUR_MS
    with pytest.raises(SessionExpiredError):
        await service.identify_session(session.token)


async def test_the_seed_is_stored_sealed(service: CredentialService, engine: Engine) -> None:
    totp = await _ready(service)
    with engine.connect() as connection:
        (stored,) = connection.exec_driver_sql("SELECT totp_sealed FROM user_credential").one()
        everything = repr(connection.exec_driver_sql("SELECT * FROM user_credential").all())
    assert totp.secret not in stored
    assert totp.secret not in everything
    assert PASSWORD not in everything
