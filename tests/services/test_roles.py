# SPDX-License-Identifier: Apache-2.0
"""Directory roles on exchanges: only a member holding a role the request-type registry lists
in ``sent_by`` opens an exchange; its node refuses to file otherwise, and the receiver refuses
to register what such a member sent anyway, both with ``role_not_allowed``."""

from __future__ import annotations

import pytest

from node.errors import ComityError
from node.forms.registry import form_types, traits_of
from node.model.request_type import RoleNotAllowedError
from tests.services.federation import (
    AUTHORITY,
    UNIT,
    Federation,
    example_form,
    identity,
)


def test_the_secretariat_and_oversight_send_no_request_of_any_type() -> None:
    for form_type in form_types():
        sent_by = traits_of(form_type.name).sent_by
        assert {"requesting", "central_authority", "point_of_contact_24_7"} <= sent_by
        assert not sent_by & {"secretariat", "oversight"}, form_type.name


async def test_a_node_whose_only_role_is_oversight_refuses_to_file(fed: Federation) -> None:
    await fed.set_roles(UNIT, ["oversight"], UNIT)
    with pytest.raises(RoleNotAllowedError, match="aa-cyber-unit holds no directory role"):
        await fed[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=example_form()
        )
    with pytest.raises(RoleNotAllowedError):
        fed[UNIT].exchange.preview_request(
            request_type="preservation", recipient=AUTHORITY, form_json=example_form()
        )
    assert await fed[UNIT].exchange.list_requests(direction=None, limit=10) == []


async def test_the_receiver_refuses_a_request_from_an_oversight_body(fed: Federation) -> None:
    # The sender's node still trusts the version listing it as a central authority.
    await fed.set_roles(UNIT, ["oversight"], AUTHORITY)
    envelope = fed.forge(signer=UNIT, recipient=AUTHORITY, payload=example_form())
    with pytest.raises(ComityError) as refused:
        await fed[AUTHORITY].exchange.receive(
            envelope, peer_fingerprint=identity(UNIT).tls_fingerprint
        )
    assert refused.value.code == "role_not_allowed"
    assert await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10) == []
    assert await fed[AUTHORITY].events() == []


async def test_a_role_that_may_send_is_enough_among_others(fed: Federation) -> None:
    await fed.set_roles(UNIT, ["oversight", "requesting"], UNIT, AUTHORITY)
    filed = await fed[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=example_form()
    )
    assert filed.state == "delivered"
