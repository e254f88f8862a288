# SPDX-License-Identifier: Apache-2.0
"""Queries for users, roles, tokens and case units, inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from node.model.people import Role
from node.storage.people_tables import CaseUnitRow, TokenRow, UserRoleRow, UserRow


def get_user(session: Session, name: str) -> UserRow | None:
    return session.get(UserRow, name)


def user_of_os_login(session: Session, login: str) -> UserRow | None:
    return session.exec(select(UserRow).where(col(UserRow.os_user) == login)).first()


def list_users(session: Session) -> list[UserRow]:
    return list(session.exec(select(UserRow).order_by(col(UserRow.name))))


def count_users(session: Session) -> int:
    return session.exec(select(func.count()).select_from(UserRow)).one()


def roles_of(session: Session, name: str) -> frozenset[Role]:
    query = select(UserRoleRow.role).where(col(UserRoleRow.name) == name)
    return frozenset(Role(role) for role in session.exec(query))


def add_user(session: Session, user: UserRow, roles: frozenset[Role]) -> None:
    session.add(user)
    session.flush()
    set_roles(session, user.name, roles)


def set_roles(session: Session, name: str, roles: frozenset[Role]) -> None:
    session.execute(delete(UserRoleRow).where(col(UserRoleRow.name) == name))
    for role in sorted(roles):
        session.add(UserRoleRow(name=name, role=role.value))
    session.flush()


def add_token(session: Session, token: TokenRow) -> None:
    session.add(token)
    session.flush()


def get_token(session: Session, token_id: str) -> TokenRow | None:
    return session.get(TokenRow, token_id)


def tokens_of(session: Session, name: str | None) -> list[TokenRow]:
    query = select(TokenRow).order_by(col(TokenRow.created_at_ms))
    if name is not None:
        query = query.where(col(TokenRow.name) == name)
    return list(session.exec(query))


def record_case_unit(session: Session, *, exchange_id: str, unit: str, filed_by: str) -> None:
    session.flush()  # the exchange row first: the case unit refers to it
    session.add(CaseUnitRow(exchange_id=exchange_id, unit=unit, filed_by=filed_by))


def unit_of_case(session: Session, exchange_id: str) -> str | None:
    row = session.get(CaseUnitRow, exchange_id)
    return row.unit if row is not None else None


def cases_of_unit(session: Session, unit: str) -> set[str]:
    query = select(CaseUnitRow.exchange_id).where(col(CaseUnitRow.unit) == unit)
    return set(session.exec(query))
