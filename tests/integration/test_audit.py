# SPDX-License-Identifier: Apache-2.0
"""Both ends of an exchange log it, in the same transactions as the exchange itself."""

from __future__ import annotations

import uuid

import pytest

from node.audit.leaf import Leaf, Opening
from node.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
)
from node.audit.note import Checkpoint, split_note
from node.forms.registry import schemas_dir
from node.forms.validate import form_strings
from node.ids import AgencyId, ExchangeId
from node.services.audit import AuditService, record_event
from node.storage import audit_repo
from node.storage.engine import transaction
from node.storage.tables import AuditOpening
from node.timeutil import now_ms
from tests.integration.harness import Federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


def audit_log(
    fed: Federation, agency: str
) -> tuple[list[Leaf], list[bytes], dict[int, list[AuditOpening]]]:
    with transaction(fed.nodes[agency].engine) as session:
        size = audit_repo.audit_size(session)
        rows = audit_repo.audit_leaves(session, start=0, end=size)
        openings = {row.idx: audit_repo.audit_openings(session, row.idx) for row in rows}
    assert [row.idx for row in rows] == list(range(size))  # no gaps
    assert all(row.leaf_hash == leaf_hash(row.leaf) for row in rows)
    return [Leaf.from_bytes(row.leaf) for row in rows], [row.leaf for row in rows], openings


async def test_each_end_logs_its_events_with_the_shared_exchange_id(fed: Federation) -> None:
    filed = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=FORM
    )
    sent, sent_bytes, sent_openings = audit_log(fed, UNIT)
    received, received_bytes, _ = audit_log(fed, AUTHORITY)
    assert [leaf.public.event for leaf in sent] == ["request.sent", "receipt.received"]
    assert [leaf.public.event for leaf in received] == ["request.received", "receipt.sent"]
    for leaf in sent + received:
        assert leaf.public.exchange_id == filed.request_id
        assert (leaf.public.sender, leaf.public.recipient) == (UNIT, AUTHORITY)
        assert leaf.public.legal_basis == "budapest-art29"
    # The signed receipt promised the receiver's leaf; the sender logged that promise.
    assert filed.receipt is not None
    assert filed.receipt.body.audit_leaf_index == 0
    assert sent[1].public.promised_leaf == 0
    assert received[0].public.event == "request.received"

    # The node's private openings open its leaves' commitments; the case reference is there.
    first = [Opening(name=o.name, value=o.value, salt=o.salt) for o in sent_openings[0]]
    assert all(sent[0].opens(o) for o in first)
    assert {o.name: o.value for o in first}["case_reference"] == "EE-CYB-2026-0417"

    # Nothing of the case reaches the public part of any leaf.
    public = b"".join(sent_bytes + received_bytes).decode()
    for value in form_strings(filed.form_json):
        if len(value) >= 6 and value not in ("budapest-art29", "preservation.v1"):
            assert value not in public


async def test_refused_input_logs_nothing(fed: Federation) -> None:
    with pytest.raises(Exception):  # noqa: B017 (the refusal itself is tested elsewhere)
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=b"{}"
        )
    assert audit_log(fed, UNIT)[0] == []
    assert audit_log(fed, AUTHORITY)[0] == []


async def test_proofs_of_a_log_of_several_tiles_come_from_stored_tile_roots(
    fed: Federation,
) -> None:
    node = fed.nodes[UNIT]
    with transaction(node.engine) as session:
        for i in range(600):
            record_event(
                session,
                event="request.sent",
                request_type="preservation",
                form_json=FORM,
                sender=UNIT,
                recipient=AUTHORITY,
                exchange_id=ExchangeId(str(uuid.UUID(int=i))),
                instant_ms=now_ms(),
                envelope_digest=bytes(32),
            )
    _, leaves, _ = audit_log(fed, UNIT)
    hashes = [leaf_hash(x) for x in leaves]

    def subtree(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(hashes[start:end])

    note = await node.audit.signed_checkpoint()
    assert Checkpoint.parse(split_note(note)[0]).root == root_from_leaf_hashes(hashes)
    for index, size in ((0, 600), (255, 600), (256, 513), (599, 600)):
        proof = await node.audit.inclusion_proof(index=index, size=size)
        assert proof == inclusion_proof(index, size, subtree)
    for old, new in ((1, 600), (256, 512), (300, 599)):
        proof = await node.audit.consistency_proof(old_size=old, new_size=new)
        assert proof == consistency_proof(old, new, subtree)
    with transaction(node.engine) as session:
        assert audit_repo.audit_tile_roots(session, start=0, end=10) == [
            root_from_leaf_hashes(hashes[0:256]),
            root_from_leaf_hashes(hashes[256:512]),
        ]
        assert audit_repo.audit_tile_hashes(session, 1) == b"".join(hashes[256:512])
        assert audit_repo.audit_tile_hashes(session, 2) is None  # the right edge is not a full tile
    # A restarted node (a fresh service) takes the stored tile roots.
    fresh = AuditService(
        database=node.database, key=fed.keys(UNIT).checkpoint, agency_id=UNIT, clock=now_ms
    )
    assert await fresh.inclusion_proof(index=3, size=600) == inclusion_proof(3, 600, subtree)
