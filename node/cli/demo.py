# SPDX-License-Identifier: Apache-2.0
"""``comity demo``: three agencies, one preservation request, told step by step.

Everything runs for real: three ``comity node serve`` processes on loopback, each with its
own keys, certificate and SQLite database in a temporary directory, and the request filed
with the same CLI commands an investigator would type.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from node.cli.processes import comity_command, free_port, spawn_node, wait_until_serving
from node.config import NodeConfig, init_node
from node.errors import ComityError, ConfigError
from node.forms.registry import schemas_dir
from node.members import build_members_file

WITNESS_WAIT_S = 3.0


@dataclass(frozen=True)
class Agency:
    agency_id: str
    country: str
    role: str
    description: str


AGENCIES = (
    Agency("ee-cyber-unit", "EE", "requesting", "a national cybercrime unit in Estonia"),
    Agency("pt-central-authority", "PT", "central_authority", "the central authority of Portugal"),
    Agency("ie-central-authority", "IE", "central_authority", "the central authority of Ireland"),
    Agency("coe-secretariat", "FR", "secretariat", "the treaty secretariat, which audits"),
)


def run(console: Console, *, keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="comity-demo-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        configs = _set_up(console, workdir)
        processes = _start(console, configs, workdir)
        _walk_through(console, configs)
        _audit(console, configs)
        return _shut_down(console, processes)
    except ComityError as e:
        console.print(Text.assemble(("The demo failed: ", "bold red"), e.diagnostics()))
        _print_logs(console, workdir)
        return 1
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        if keep:
            console.print(f"Kept the demo's files in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _step(console: Console, title: str, text: str) -> None:
    console.print(Rule(f"[bold]{title}[/bold]"))
    console.print(text)


def _set_up(console: Console, workdir: Path) -> dict[str, NodeConfig]:
    _step(
        console,
        "1. Three agencies and the treaty secretariat set up their nodes",
        "Each agency creates its own signing key (Ed25519), encryption key (X25519) and TLS "
        "certificate, and an embedded SQLite database:\n"
        + "\n".join(f"  - {a.agency_id}: {a.description}" for a in AGENCIES),
    )
    configs = {}
    for agency in AGENCIES:
        listen = f"127.0.0.1:{free_port()}"
        configs[agency.agency_id] = init_node(
            directory=workdir / agency.agency_id,
            agency_id=agency.agency_id,
            country=agency.country,
            roles=[agency.role],
            listen=listen,
        )
        console.print(f"  comity node init --agency-id {agency.agency_id} --listen {listen}")
    _step(
        console,
        "2. They exchange member cards",
        "Each node's public card (endpoint, public keys, certificate) goes into one members "
        "file that every node loads. Nodes accept mutual-TLS connections only from the "
        "certificates listed there.",
    )
    cards = [(workdir / a.agency_id / "member.toml").read_text() for a in AGENCIES]
    members = build_members_file(cards, version=1)
    for agency in AGENCIES:
        configs[agency.agency_id].members_file.write_text(members)
        # Witnesses cosign every second here (a minute by default), so the audit below
        # can require a quorum of them.
        with configs[agency.agency_id].config_path.open("a", encoding="utf-8") as config:
            config.write("\n[audit]\ncosign_interval_s = 1.0\n")
    return configs


def _start(
    console: Console, configs: dict[str, NodeConfig], workdir: Path
) -> list[subprocess.Popen[bytes]]:
    _step(console, "3. The nodes start", "Each runs `comity node serve` as its own process.")
    processes = [
        spawn_node(config, workdir / f"{agency_id}.log") for agency_id, config in configs.items()
    ]
    for (agency_id, config), process in zip(configs.items(), processes, strict=True):
        wait_until_serving(config, process)
        console.print(f"  {agency_id} is serving on {config.listen}")
    return processes


def _walk_through(console: Console, configs: dict[str, NodeConfig]) -> None:
    unit, authority, other, _ = (configs[a.agency_id] for a in AGENCIES)
    form = schemas_dir() / "examples" / "preservation.example.json"
    _step(
        console,
        "4. The cybercrime unit files an expedited preservation request",
        "An investigator at ee-cyber-unit asks Portugal to preserve the accounts and posts "
        "behind a (fictional) doxxing campaign against an activist, under Budapest Convention "
        "Art. 29. The node checks the form against its schema, canonicalises the indicators, "
        "signs it, seals it to Portugal's key and delivers it over mutual TLS.",
    )
    _cli(
        console,
        unit,
        "request",
        "file",
        "preservation",
        "--to",
        authority.agency_id,
        "--form",
        str(form),
    )
    request_id = json.loads(_cli(console, unit, "request", "list", "--json", show=False))[0][
        "request_id"
    ]
    _step(
        console,
        "5. Portugal's node has registered it",
        "It checked the TLS peer, the signature and the seal before reading a byte of the "
        "form, validated the form again, stored it, and signed a receipt.",
    )
    _cli(console, authority, "request", "show", request_id, "--form")
    _expect_state(authority, request_id, "registered")
    _step(
        console,
        "6. The unit holds Portugal's signed receipt",
        "The receipt carries the digest of exactly what Portugal received; the unit's node "
        "verified the signature and compared the digest with what it sent.",
    )
    _cli(console, unit, "request", "show", request_id)
    detail = _expect_state(unit, request_id, "delivered")
    if not detail["receipt_verified"]:
        raise ConfigError("the receipt at the sender is not verified")
    _step(console, "7. Ireland saw nothing", "The request went only to its addressee.")
    _cli(console, other, "request", "list")
    if json.loads(_cli(console, other, "request", "list", "--json", show=False)):
        raise ConfigError("the third agency unexpectedly holds a request")


def _audit(console: Console, configs: dict[str, NodeConfig]) -> None:
    secretariat = configs["coe-secretariat"]
    parties = [a.agency_id for a in AGENCIES[:3]]
    _step(
        console,
        "8. The treaty secretariat audits the three logs",
        "Every node logged its side of the exchange in a Merkle log, in the same transaction "
        "as the exchange itself, with public fields only (case details are salted "
        "commitments). The secretariat checks each node's signed checkpoint, recomputes its "
        "root from every leaf, requires that at least two other members' witnesses cosigned "
        "it, and matches both ends of every exchange, without reading a case.",
    )
    time.sleep(WITNESS_WAIT_S)  # let the witnesses cosign the newest checkpoints
    _cli(console, secretariat, "audit", "reconcile", "--quorum", "2", *parties)
    _cli(console, secretariat, "audit", "report", "--format", "csv", *parties)
    _step(
        console,
        "9. Someone alters Portugal's log behind its back",
        "One leaf is rewritten directly in Portugal's database. The next audit catches it.",
    )
    _rewrite_first_leaf(configs["pt-central-authority"])
    error = _cli(
        console, secretariat, "audit", "verify", "pt-central-authority", expect_failure=True
    )
    if "audit_failed" not in error:
        raise ConfigError("the tampered log was not caught")


def _rewrite_first_leaf(config: NodeConfig) -> None:
    path = config.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "UPDATE audit_leaf SET leaf = CAST(replace(CAST(leaf AS TEXT), 'preservation', "
            "'production') AS BLOB) WHERE idx = 0"
        )


def _expect_state(config: NodeConfig, request_id: str, state: str) -> dict[str, object]:
    detail: dict[str, object] = json.loads(
        _cli(Console(quiet=True), config, "request", "show", request_id, "--json", show=False)
    )
    if detail["state"] != state:
        raise ConfigError(f"expected state {state} at {config.agency_id}, got {detail['state']}")
    return detail


def _shut_down(console: Console, processes: list[subprocess.Popen[bytes]]) -> int:
    _step(
        console,
        "10. Shutting down",
        "Each node gets SIGTERM, finishes in-flight work and closes its database.",
    )
    for process in processes:
        process.send_signal(signal.SIGTERM)
    codes = [process.wait(timeout=30) for process in processes]
    if any(codes):
        console.print(f"[red]A node exited with an error: {codes}[/red]")
        return 1
    console.print(
        "[bold green]Demo complete:[/bold green] request registered at the "
        "receiving authority, signed receipt verified at the sender, logs audited and the "
        "tampering caught."
    )
    return 0


def _cli(
    console: Console,
    config: NodeConfig,
    *args: str,
    show: bool = True,
    expect_failure: bool = False,
) -> str:
    """Run ``comity ARGS`` at ``config``'s node; its output, or its error when a failure is
    what the demo expects."""
    command = comity_command(*args, "--config", str(config.config_path))
    if show:
        console.print(f"[dim]$ comity {' '.join(args)}   # at {config.agency_id}[/dim]")
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if show:
        console.print(result.stdout.rstrip(), markup=False, highlight=False)
    if expect_failure:
        if result.returncode == 0:
            raise ConfigError(f"`comity {' '.join(args)}` should have failed")
        console.print(result.stderr.rstrip(), markup=False, highlight=False)
        return result.stderr
    if result.returncode != 0:
        raise ConfigError(f"`comity {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def _print_logs(console: Console, workdir: Path) -> None:
    for log in sorted(workdir.glob("*.log")):
        console.print(Rule(log.name))
        console.print(log.read_text(errors="replace")[-3000:], markup=False)
