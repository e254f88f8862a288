# SPDX-License-Identifier: Apache-2.0
"""Openings released by role, each release logged; erasure when retention ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from node.audit.leaf import Leaf
from node.cli.main import main
from node.forms.registry import schemas_dir
from node.gen.comity.v1 import audit_pb2, audit_pb2_grpc
from node.ids import AgencyId
from node.model.request import RequestView
from node.services.disclosure import DAY_MS, DisclosureService
from node.storage import audit_repo
from node.storage.engine import transaction
from node.timeutil import now_ms
from tests.integration.harness import Federation, make_configs, running_federation

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
CASE_REFERENCE = "EE-CYB-2026-0417"


@pytest.fixture
async def roles_fed(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    """The unit is also the secretariat; the third agency is the oversight body."""
    configs = make_configs(tmp_path, node_database_urls, secretariat=UNIT, oversight=THIRD)
    async with running_federation(configs) as federation:
        yield federation


async def file(fed: Federation) -> RequestView:
    return await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=FORM
    )


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leaves(fed: Federation, agency: str) -> list[Leaf]:
    with transaction(fed.nodes[agency].engine) as session:
        rows = audit_repo.audit_leaves(session, start=0, end=audit_repo.audit_size(session))
    return [Leaf.from_bytes(row.leaf) for row in rows]


def openings(fed: Federation, agency: str, index: int) -> dict[str, str]:
    with transaction(fed.nodes[agency].engine) as session:
        return {o.name: o.value for o in audit_repo.audit_openings(session, index)}


async def check(
    fed: Federation, capsys: pytest.CaptureFixture[str], path: Path, *, by: str
) -> dict[str, Any]:
    config = str(fed.configs[by].config_path)
    code, out, err = await cli(
        capsys, "audit", "check-proof", str(path), "--json", "--config", config
    )
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


async def test_a_court_gets_every_opening_and_the_release_is_logged(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    filed = await file(fed)
    assert await fed.nodes[AUTHORITY].collect_cosignatures() == 2
    config = str(fed.configs[AUTHORITY].config_path)
    out = tmp_path / "bundles"
    code, _, err = await cli(
        capsys,
        *("audit", "prove", filed.request_id, "--role", "court", "--reason", "trial of X"),
        *("--order", "ORD-2026-17", "--out", str(out), "--config", config),
    )
    assert code == 0, err
    files = sorted(out.glob("*.tlog-proof"))
    assert [f.name for f in files] == [f"{AUTHORITY}-0.tlog-proof", f"{AUTHORITY}-1.tlog-proof"]

    # Anyone holding the directory verifies it offline: here the requesting unit.
    record = await check(fed, capsys, files[0], by=UNIT)
    assert record["public"]["event"] == "request.received"
    opened = record["opened"]
    assert opened["case_reference"] == CASE_REFERENCE
    assert "exact_time_ms" in opened

    # Each release is a disclosure.opened leaf naming the court, committing to the order.
    log = leaves(fed, AUTHORITY)
    disclosures = [i for i, leaf in enumerate(log) if leaf.public.event == "disclosure.opened"]
    assert len(disclosures) == 2
    for index in disclosures:
        assert log[index].public.recipient == "court"
        assert log[index].public.exchange_id == filed.request_id
        committed = openings(fed, AUTHORITY, index)
        assert committed["order"] == "ORD-2026-17"
        assert committed["reason"] == "trial of X"
        assert committed["role"] == "court"
    # Neither the reason nor the order is public.
    public = json.dumps([leaf.public.__dict__ for leaf in log])
    assert "ORD-2026-17" not in public
    assert "trial of X" not in public


async def test_a_court_release_without_an_order_changes_nothing(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    filed = await file(fed)
    before = fed.rows(AUTHORITY)
    config = str(fed.configs[AUTHORITY].config_path)
    code, _, err = await cli(
        capsys,
        *("audit", "prove", filed.request_id, "--role", "court", "--reason", "trial"),
        *("--out", str(tmp_path), "--config", config),
    )
    assert code != 0
    assert "names the order" in err
    code, _, err = await cli(
        capsys, "audit", "prove", "999", "--reason", "x", "--out", str(tmp_path), "--config", config
    )
    assert code != 0
    assert "no leaf 999" in err
    assert fed.rows(AUTHORITY) == before


async def test_oversight_gets_unit_and_justification_the_secretariat_nothing(
    roles_fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fed = roles_fed
    filed = await file(fed)
    assert await fed.nodes[AUTHORITY].collect_cosignatures() == 2
    oversight_out, secretariat_out = tmp_path / "oversight", tmp_path / "secretariat"
    code, _, err = await cli(
        capsys,
        *("audit", "open", AUTHORITY, filed.request_id, "--reason", "annual lawfulness check"),
        *("--out", str(oversight_out), "--config", str(fed.configs[THIRD].config_path)),
    )
    assert code == 0, err
    record = await check(fed, capsys, oversight_out / f"{AUTHORITY}-0.tlog-proof", by=THIRD)
    assert set(record["opened"]) == {"requesting_unit", "justification"}

    code, _, err = await cli(
        capsys,
        *("audit", "open", AUTHORITY, "0", "--reason", "statistics check"),
        *("--out", str(secretariat_out), "--config", str(fed.configs[UNIT].config_path)),
    )
    assert code == 0, err
    record = await check(fed, capsys, secretariat_out / f"{AUTHORITY}-0.tlog-proof", by=UNIT)
    assert record["opened"] == {}

    recipients = [
        (leaf.public.recipient, openings(fed, AUTHORITY, i)["role"])
        for i, leaf in enumerate(leaves(fed, AUTHORITY))
        if leaf.public.event == "disclosure.opened"
    ]
    assert recipients == [(THIRD, "oversight")] * 2 + [(UNIT, "secretariat")]


async def test_a_member_without_an_audit_role_is_refused(fed: Federation) -> None:
    filed = await file(fed)
    before = fed.rows(AUTHORITY)
    async with fed.channel(client=THIRD, server=AUTHORITY) as channel:
        stub = audit_pb2_grpc.AuditStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetProofBundles(
                audit_pb2.GetProofBundlesRequest(target=filed.request_id, reason="curious")
            )
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "only an oversight body or the secretariat" in (caught.value.details() or "")
    assert fed.rows(AUTHORITY) == before


async def test_erasure_at_the_end_of_retention_keeps_every_proof_valid(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    filed = await file(fed)
    node = fed.nodes[AUTHORITY]
    assert await node.collect_cosignatures() == 2
    config = str(fed.configs[AUTHORITY].config_path)
    code, out, err = await cli(capsys, "audit", "erase-expired", "--config", config)
    assert code == 0, err
    assert "0 leaf(s)" in out
    assert openings(fed, AUTHORITY, 0)["case_reference"] == CASE_REFERENCE

    # Two years and a day later (the Budapest profile keeps openings for 730 days).
    later = DisclosureService(
        database=node.database,
        audit=node.audit,
        agency_id=AUTHORITY,
        clock=lambda: now_ms() + 731 * DAY_MS,
    )
    erased = await later.erase_expired()
    assert (erased.leaves, erased.exchanges) == (2, 1)
    assert openings(fed, AUTHORITY, 0) == {}
    assert openings(fed, AUTHORITY, 1) == {}
    log = leaves(fed, AUTHORITY)
    assert [leaf.public.event for leaf in log] == [
        "request.received",
        "receipt.sent",
        "data.erased",
    ]
    assert log[2].public.exchange_id == filed.request_id
    assert openings(fed, AUTHORITY, 2) == {}  # an erasure record has nothing to erase
    assert (await later.erase_expired()).leaves == 0

    # The log still verifies, and the erased record is still proven: public fields only.
    code, _, err = await cli(
        capsys,
        "audit",
        "verify",
        AUTHORITY,
        "--json",
        "--config",
        str(fed.configs[UNIT].config_path),
    )
    assert code == 0, err
    code, _, err = await cli(
        capsys,
        *("audit", "prove", "0", "--reason", "own check", "--out", str(tmp_path)),
        *("--config", config),
    )
    assert code == 0, err
    record = await check(fed, capsys, tmp_path / f"{AUTHORITY}-0.tlog-proof", by=UNIT)
    assert record["opened"] == {}


async def test_check_proof_refuses_a_bundle_no_witness_cosigned(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await file(fed)
    config = str(fed.configs[AUTHORITY].config_path)
    code, _, err = await cli(
        capsys,
        *("audit", "prove", "0", "--reason", "own check", "--quorum", "0"),
        *("--out", str(tmp_path), "--config", config),
    )
    assert code == 0, err
    bundle, unit = str(tmp_path / f"{AUTHORITY}-0.tlog-proof"), str(fed.configs[UNIT].config_path)
    code, _, err = await cli(capsys, "audit", "check-proof", bundle, "--config", unit)
    assert code != 0
    assert "cosigned by 0 witness(es), the policy asks for 1" in err
    code, _, err = await cli(
        capsys, "audit", "check-proof", bundle, "--quorum", "0", "--config", unit
    )
    assert code == 0, err


async def test_prove_waits_for_the_witnesses_before_writing(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await file(fed)
    config = str(fed.configs[AUTHORITY].config_path)
    proving = asyncio.create_task(
        cli(
            capsys,
            *("audit", "prove", "1", "--reason", "own check", "--quorum", "2", "--wait", "30"),
            *("--out", str(tmp_path), "--config", config),
        )
    )
    while not proving.done():  # the node's cosigning rounds, quicker than in production
        await fed.nodes[AUTHORITY].collect_cosignatures()
        await asyncio.sleep(0.3)
    code, _, err = await proving
    assert code == 0, err
    record = await check(fed, capsys, tmp_path / f"{AUTHORITY}-1.tlog-proof", by=UNIT)
    assert len(record["witnesses"]) == 2


async def test_prove_gives_up_when_no_witness_cosigns(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await file(fed)
    config = str(fed.configs[AUTHORITY].config_path)
    code, _, err = await cli(
        capsys,
        *("audit", "prove", "0", "--reason", "own check", "--wait", "0.5"),
        *("--out", str(tmp_path), "--config", config),
    )
    assert code != 0
    assert "covering record 0 was cosigned by 1 witness(es) within 0.5s" in err
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.tlog-proof")))
