# SPDX-License-Identifier: Apache-2.0
"""The demo's case: preservation, production with a clarification round, a partial execution
with evidence returned, and a second, abusive request refused on the speech ground."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

from node.cli.demo_tools import cli, expect_state, file_request, step
from node.config import NodeConfig
from node.errors import ConfigError
from node.forms.registry import schemas_dir
from node.timeutil import format_ms, now_ms

EVIDENCE_WAIT_S = 20.0
DAY_MS = 24 * 3600 * 1000


def run_case(
    console: Console, workdir: Path, unit: NodeConfig, authority: NodeConfig, preservation: str
) -> None:
    _preserve(console, unit, authority, preservation)
    _produce(console, workdir, unit, authority)
    _refuse_abuse(console, workdir, unit, authority)
    step(
        console,
        "11. Nothing is late",
        "Each request is due by its legal basis (decision within 72 h for the preservation, "
        "execution within 10 days for the production order), counted from receipt.",
    )
    cli(console, authority, "request", "overdue")


def _preserve(console: Console, unit: NodeConfig, authority: NodeConfig, request_id: str) -> None:
    step(
        console,
        "8. Portugal reviews and preserves",
        "A reviewer at Portugal's central authority takes the request from the queue, accepts "
        "it and confirms the data is preserved for 90 days (Art. 29 asks for at least 60). "
        "Each move is a signed message; the unit's node shows the same state.",
    )
    cli(console, authority, "review", "queue")
    cli(console, authority, "review", "start", request_id)
    cli(console, authority, "review", "decide", request_id, "--accept", "--reason",
        "Art. 29 conditions met; the posts are at risk of deletion.")  # fmt: skip
    until = format_ms(now_ms() + 90 * DAY_MS)
    cli(console, authority, "review", "preserve", request_id, "--until", until)
    expect_state(unit, request_id, "preserved")


def _produce(console: Console, workdir: Path, unit: NodeConfig, authority: NodeConfig) -> None:
    step(
        console,
        "9. A production order, a question, a partial execution, evidence returned",
        "The unit follows up with a European Production Order for the stored posts, validated "
        "by a judge. Portugal asks which period matters, gets the answer, and accepts in part: "
        "direct messages were not retained. It returns the posts as evidence: a signed "
        "manifest of SHA-256 digests, then the files in sealed chunks, each verified on "
        "arrival.",
    )
    request_id = file_request(console, unit, authority, request_type="production")
    cli(console, authority, "review", "clarify", request_id, "--question",
        "Which days of March do you need the posts for?")  # fmt: skip
    cli(console, unit, "request", "answer", request_id, "--answer",
        "2 to 10 March 2026, when the address was published and reposted.")  # fmt: skip
    cli(console, authority, "review", "decide", request_id, "--partial", "--scope",
        "Posts of both accounts, 2-10 March; no direct messages.", "--ground", "data_not_held",
        "--reason", "The provider had already purged the direct messages.")  # fmt: skip
    files = _evidence_files(workdir)
    cli(console, authority, "evidence", "send", request_id, *files, "--note",
        "Posts of the two accounts, 2-10 March 2026 (fictional).")  # fmt: skip
    cli(console, authority, "review", "execute", request_id, "--summary",
        "Posts produced as evidence; direct messages not held.")  # fmt: skip
    _wait_for_evidence(unit, request_id)
    cli(console, unit, "evidence", "list", request_id)
    listed = json.loads(cli(console, unit, "evidence", "list", request_id, "--json", show=False))
    evidence_id = listed[0]["evidence_id"]
    out = workdir / "received-posts.jsonl"
    cli(console, unit, "evidence", "fetch", request_id, evidence_id, "0", "--out", str(out))
    cli(console, unit, "evidence", "verify", request_id)
    expect_state(unit, request_id, "executed")
    cli(console, unit, "request", "show", request_id)


def _evidence_files(workdir: Path) -> list[str]:
    posts = workdir / "posts.jsonl"
    posts.write_text(
        "".join(
            json.dumps({"account": "chirper:orbit_watch_77", "post": i, "text": "FICTIONAL"}) + "\n"
            for i in range(20_000)
        ),
        encoding="utf-8",
    )
    accounts = workdir / "accounts.csv"
    accounts.write_text(
        "account,created\nchirper:orbit_watch_77,2026-02-27\nchirper:quiet.lantern,2026-02-28\n",
        encoding="utf-8",
    )
    return [f"{posts}:application/jsonl", f"{accounts}:text/csv"]


def _wait_for_evidence(unit: NodeConfig, request_id: str) -> None:
    deadline = time.monotonic() + EVIDENCE_WAIT_S
    while time.monotonic() < deadline:
        listed = json.loads(
            cli(Console(quiet=True), unit, "evidence", "list", request_id, "--json", show=False)
        )
        if listed and listed[0]["complete"]:
            return
        time.sleep(0.2)
    raise ConfigError("the evidence did not arrive in time")


def _refuse_abuse(console: Console, workdir: Path, unit: NodeConfig, authority: NodeConfig) -> None:
    step(
        console,
        "10. An abusive request is refused on the speech ground",
        "A second request asks who is behind an account that criticised a housing department. "
        "The form's conduct describes criticism, not threats; Portugal refuses it as "
        "targeting protected expression. The refusal ground, not the reasoning, goes into "
        "both audit logs for the secretariat's statistics.",
    )
    form = json.loads(
        (schemas_dir() / "examples" / "subscriber-information.example.json").read_text()
    )
    form["conduct"] = {
        "categories": ["coordinated_targeting"],
        "description": "Posts calling the housing department's evictions unlawful and asking "
        "readers to complain to the department.",
    }
    form["data_requested"]["indicators"] = [
        {"type": "platform_account", "value": "chirper:@housing_critic"}
    ]
    path = workdir / "abusive.json"
    path.write_text(json.dumps(form), encoding="utf-8")
    request_id = file_request(
        console, unit, authority, request_type="subscriber-information", form=path
    )
    cli(console, authority, "review", "decide", request_id, "--refuse", "--ground",
        "protected_expression", "--reason",
        "The posts are political criticism of a public body, not threats.")  # fmt: skip
    expect_state(unit, request_id, "refused")
