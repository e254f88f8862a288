# SPDX-License-Identifier: Apache-2.0
"""`comity audit verify` against real nodes over mutual TLS: honest, altered, rewritten logs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from node.cli.main import main
from node.forms.registry import schemas_dir
from node.ids import AgencyId, new_exchange_id
from node.services.audit import record_event
from node.storage.engine import create_engine, transaction
from node.timeutil import now_ms
from tests.integration.harness import Federation, start

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


async def file(fed: Federation, n: int) -> None:
    for _ in range(n):
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=FORM
        )


async def audit(
    fed: Federation, capsys: pytest.CaptureFixture[str], *, auditor: str, audited: str
) -> tuple[int, str, str]:
    config = str(fed.configs[auditor].config_path)
    code = await asyncio.to_thread(main, ["audit", "verify", audited, "--json", "--config", config])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_honest_logs_verify_and_keep_extending(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await file(fed, 3)
    code, out, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 0, err
    first = json.loads(out)
    assert first["size"] == 6
    assert first["events"] == {"request.received": 3, "receipt.sent": 3}
    assert first["consistent_with"] is None

    await file(fed, 2)
    code, out, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 0, err
    second = json.loads(out)
    assert (second["size"], second["consistent_with"]) == (10, 6)

    # A node can audit itself through the same door.
    code, out, err = await audit(fed, capsys, auditor=UNIT, audited=UNIT)
    assert code == 0, err
    assert json.loads(out)["events"] == {"request.sent": 5, "receipt.received": 5}


def tamper(fed: Federation, agency: str, index: int) -> None:
    with fed.nodes[agency].engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_leaf SET leaf = :leaf WHERE idx = :idx"),
            {"leaf": b'{"tampered":true}', "idx": index},
        )


def swap_leaves(engine: Engine, a: int, b: int) -> None:
    """Rewrite history as the node itself would: two well-formed leaves change places,
    stored hashes and all."""
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT idx, leaf, leaf_hash FROM audit_leaf ORDER BY idx"))
        (_, leaf_a, hash_a), (_, leaf_b, hash_b) = [r for r in rows if r[0] in (a, b)]
        for idx, leaf, digest in ((a, leaf_b, hash_b), (b, leaf_a, hash_a)):
            connection.execute(
                text("UPDATE audit_leaf SET leaf = :leaf, leaf_hash = :h WHERE idx = :idx"),
                {"leaf": leaf, "h": digest, "idx": idx},
            )


async def test_a_leaf_altered_after_signing_is_caught(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await file(fed, 2)
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 0, err
    tamper(fed, AUTHORITY, 1)
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 1
    assert "audit_failed" in err
    assert "leaf 1 is malformed" in err


async def test_history_rewritten_before_the_next_checkpoint_is_caught(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await file(fed, 2)
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 0, err
    # Swap two earlier leaves (both well formed), then let the log grow and re-sign.
    swap_leaves(fed.nodes[AUTHORITY].engine, 0, 2)
    await file(fed, 1)
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 1
    assert "history was rewritten" in err


def append_dated(fed: Federation, agency: AgencyId, *, hours_ago: int) -> None:
    """What a dishonest node does: log an event under an earlier time than it happened."""
    with transaction(fed.nodes[agency].engine) as session:
        record_event(
            session,
            event="request.received",
            request_type="preservation",
            form_json=FORM,
            sender=UNIT,
            recipient=agency,
            exchange_id=new_exchange_id(),
            instant_ms=now_ms() - hours_ago * 3600 * 1000,
            envelope_digest=bytes(32),
        )


async def test_an_entry_back_dated_behind_the_witnesses_is_caught(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two entries from five hours ago, then the witnesses see the log at two leaves.
    append_dated(fed, AUTHORITY, hours_ago=5)
    append_dated(fed, AUTHORITY, hours_ago=5)
    assert await fed.nodes[AUTHORITY].collect_cosignatures() == 2
    code, out, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 0, err
    assert len(json.loads(out)["witnesses"]) == 2
    # A new entry claiming three hours ago: later than the entries before it, so only the
    # witnesses' clocks show that it cannot have been appended then.
    append_dated(fed, AUTHORITY, hours_ago=3)
    assert await fed.nodes[AUTHORITY].collect_cosignatures() == 2
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 1
    assert "leaf 2 claims" in err
    assert "witnesses saw the log at 2 leaves" in err
    assert "back-dated" in err


async def test_auditors_comparing_checkpoints_catch_a_split_view(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    third = "cc-central-authority"
    await file(fed, 3)
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 0, err
    # The node forks: its operator rewrites an early leaf, removes the signed checkpoints and
    # restarts it, so it signs the other history at the same size and shows it to the next
    # auditor (who has no earlier checkpoint to compare with).
    await fed.nodes[AUTHORITY].stop()
    engine = create_engine(fed.configs[AUTHORITY].database_url)
    swap_leaves(engine, 0, 2)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_cosignature"))
        connection.execute(text("DELETE FROM audit_checkpoint"))
    engine.dispose()
    fed.nodes[AUTHORITY] = await start(fed.configs[AUTHORITY], fed.spans)
    code, _, err = await audit(fed, capsys, auditor=third, audited=AUTHORITY)
    assert code == 0, err

    # The two auditors exchange what they accepted.
    theirs = fed.configs[third].config_path.parent / "audit-state" / f"{AUTHORITY}.checkpoint"
    unit_config = str(fed.configs[UNIT].config_path)
    code, _, err = await cli(
        capsys, "audit", "compare", AUTHORITY, str(theirs), "--config", unit_config
    )
    assert code == 1
    assert "split_view" in err
    assert "two different trees of 6 leaves" in err
    evidence = fed.configs[UNIT].config_path.parent / "audit-state" / f"{AUTHORITY}.split-view"
    assert evidence.read_text().count(f"comity/{AUTHORITY}/audit/v1\n6\n") == 2


async def test_auditors_comparing_one_history_agree(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    third = "cc-central-authority"
    await file(fed, 2)
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited=AUTHORITY)
    assert code == 0, err
    await file(fed, 3)
    code, _, err = await audit(fed, capsys, auditor=third, audited=AUTHORITY)
    assert code == 0, err
    theirs = fed.configs[third].config_path.parent / "audit-state" / f"{AUTHORITY}.checkpoint"
    unit_config = str(fed.configs[UNIT].config_path)
    code, out, err = await cli(
        capsys, "audit", "compare", AUTHORITY, str(theirs), "--config", unit_config
    )
    assert code == 0, err
    assert "checkpoints of 4 and 10 leaves are consistent" in " ".join(out.split())


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_unknown_agency_is_refused(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await audit(fed, capsys, auditor=UNIT, audited="zz-nobody")
    assert code == 1
    assert "unknown_agency" in err


async def test_reconcile_finds_an_exchange_one_end_never_logged(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await file(fed, 2)
    config = str(fed.configs[UNIT].config_path)
    code = await asyncio.to_thread(
        main, ["audit", "reconcile", UNIT, AUTHORITY, "--json", "--config", config]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["findings"] == []

    # A receiver that never logged: its log is empty but self-consistent, so only the
    # comparison with the sender's log can tell (a fresh auditor, who accepted nothing yet).
    with fed.nodes[AUTHORITY].engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_opening"))
        connection.execute(text("DELETE FROM audit_checkpoint"))
        connection.execute(text("DELETE FROM audit_leaf"))
        connection.execute(text("UPDATE audit_head SET size = 0"))
    config = str(fed.configs["cc-central-authority"].config_path)
    code = await asyncio.to_thread(
        main, ["audit", "reconcile", UNIT, AUTHORITY, "--json", "--config", config]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    hidden = [f for f in report["findings"] if f["kind"] == "hidden" and f["node"] == AUTHORITY]
    assert len(hidden) == 4  # per request: no request.received, no receipt.sent


async def test_report_publishes_counts_without_case_content(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await file(fed, 6)
    page = tmp_path / "report.html"
    config = str(fed.configs[UNIT].config_path)
    code = await asyncio.to_thread(
        main,
        [
            "audit",
            "report",
            UNIT,
            AUTHORITY,
            "--format",
            "html",
            "--out",
            str(page),
            "--config",
            config,
        ],
    )
    assert "Wrote the html report on 2 log(s)" in capsys.readouterr().out
    assert code == 0
    text = page.read_text()
    assert f"{UNIT} -&gt; {AUTHORITY}" in text
    assert "EE-CYB-2026-0417" not in text
    code = await asyncio.to_thread(
        main, ["audit", "report", "--format", "json", "--config", config, UNIT]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["by_request_type"] == {"preservation": 6}
