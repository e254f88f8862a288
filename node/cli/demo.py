# SPDX-License-Identifier: Apache-2.0
"""``comity demo``: three agencies and the treaty secretariat, one case, told step by step.

Everything runs for real: four ``comity node serve`` processes on loopback, each with its own
keys, certificate and SQLite database in a temporary directory, set up through the
secretariat's key ceremony, and every request, decision and piece of evidence moved with the
same CLI commands investigators and reviewers would type.
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
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from node.cli.demo_campaign import run_campaign
from node.cli.demo_case import run_case
from node.cli.demo_people import run_people
from node.cli.demo_tools import cli, expect_state, file_request, step
from node.cli.processes import comity_command, listen_ports, spawn_node, wait_until_serving
from node.config import USER_ROLES, NodeConfig, init_node
from node.errors import ComityError, ConfigError
from node.model.approvals import Policy

WITNESS_WAIT_S = 3.0
DIRECTORY_WAIT_S = 20.0


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
        preservation = _walk_through(console, configs)
        unit, authority = configs["ee-cyber-unit"], configs["pt-central-authority"]
        run_case(console, workdir, unit, authority, preservation)
        _rotate(console, workdir, configs)
        _audit(console, configs)
        _release_to_court(console, workdir, configs, preservation)
        _tamper(console, configs)
        unit_set = _overlap(console, workdir, configs)
        run_campaign(console, workdir, configs, unit_set)
        run_people(console, unit, authority)
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


def _set_up(console: Console, workdir: Path) -> dict[str, NodeConfig]:
    step(
        console,
        "1. Three agencies and the treaty secretariat set up their nodes",
        "Each agency creates its own signing key (Ed25519), encryption key (X25519) and TLS "
        "certificate, and an embedded SQLite database:\n"
        + "\n".join(f"  - {a.agency_id}: {a.description}" for a in AGENCIES),
    )
    configs = {}
    for agency, port in zip(AGENCIES, listen_ports(len(AGENCIES)), strict=True):
        listen = f"127.0.0.1:{port}"
        configs[agency.agency_id] = init_node(
            directory=workdir / agency.agency_id,
            agency_id=agency.agency_id,
            country=agency.country,
            roles=[agency.role],
            listen=listen,
            admin_roles=USER_ROLES,
            # One login plays the admins here, who must not be held for approval: the unit
            # holds emergency filings only (step 18: an investigator files, a supervisor
            # approves, each with a token of their own); a real node holds all four kinds.
            approvals=(Policy.EMERGENCY_FILING,) if agency.role == "requesting" else (),
        )
        console.print(f"  comity node init --agency-id {agency.agency_id} --listen {listen}")
    for config in configs.values():
        _tune(config)
    _ceremony(console, workdir, configs)
    return configs


def _tune(config: NodeConfig) -> None:
    """Witnesses cosign and nodes look for a new directory every second here (a minute and
    five minutes by default), so the demo need not wait."""
    document = tomllib.loads(config.config_path.read_text(encoding="utf-8"))
    document["federation"]["directory_sync_interval_s"] = 1.0
    document["audit"] = {"cosign_interval_s": 1.0}
    config.config_path.write_text(tomli_w.dumps(document), encoding="utf-8")


def _ceremony(console: Console, workdir: Path, configs: dict[str, NodeConfig]) -> None:
    step(
        console,
        "2. The secretariat's key ceremony: a signed federation directory",
        "Three root key holders each make a root key offline; any two of them must sign a "
        "directory version before a node believes it. The directory lists every member's "
        "endpoint, TLS certificate and public keys, read from the member cards the agencies "
        "handed in.",
    )
    ceremony = workdir / "ceremony"
    ceremony.mkdir()
    for index in range(3):
        _offline(console, ceremony, "keygen", "--out", f"root-{index}.key")
    roots = [arg for i in range(3) for arg in ("--root-key", f"root-{i}.key.pub")]
    _offline(console, ceremony, "init", "directory.json", *roots, "--threshold", "2")
    cards = [str(workdir / a.agency_id / "member.toml") for a in AGENCIES]
    _offline(console, ceremony, "add-member", "directory.json", *cards)
    _sign_by_two(console, ceremony)
    _offline(console, ceremony, "verify", "directory.json")
    _offline(console, ceremony, "show", "directory.json")
    for config in configs.values():
        shutil.copyfile(ceremony / "directory.json", config.directory_file)
    console.print("  Every node gets directory.json beside its configuration.")


def _sign_by_two(console: Console, ceremony: Path) -> None:
    """Two holders sign copies separately, offline; the copies are merged."""
    for index in (0, 1):
        _offline(
            console,
            ceremony,
            "sign",
            "directory.json",
            "--key",
            f"root-{index}.key",
            "--out",
            f"signed-{index}.json",
        )
    _offline(
        console, ceremony, "merge", "signed-0.json", "signed-1.json", "--out", "directory.json"
    )


def _offline(console: Console, ceremony: Path, *args: str) -> str:
    """``comity federation ARGS`` run in the ceremony's folder, away from any node."""
    console.print(f"[dim]$ comity federation {' '.join(args)}   # offline[/dim]")
    result = subprocess.run(
        comity_command("federation", *args),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=ceremony,
    )
    console.print(result.stdout.rstrip(), markup=False, highlight=False)
    if result.returncode != 0:
        raise ConfigError(f"`comity federation {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def _rotate(console: Console, workdir: Path, configs: dict[str, NodeConfig]) -> None:
    unit = configs["ee-cyber-unit"]
    step(
        console,
        "12. The cybercrime unit rotates its signing key without downtime",
        "The unit makes a new signing key; the secretariat lists it in directory version 2, "
        "with the old key valid 24 more hours so messages signed just before the switch "
        "still verify. Two root holders sign, the secretariat's node gets it, and every "
        "node fetches it from there.",
    )
    rotated = json.loads(cli(console, unit, "node", "rotate-key", "--json"))
    ceremony = workdir / "ceremony"
    shutil.copyfile(ceremony / "directory.json", ceremony / "version-1.json")
    _offline(
        console,
        ceremony,
        "rotate-key",
        "directory.json",
        unit.agency_id,
        "--purpose",
        "signing",
        "--public-key",
        rotated["public_key"],
    )
    _sign_by_two(console, ceremony)
    _offline(console, ceremony, "verify", "directory.json", "--trusted", "version-1.json")
    secretariat = configs["coe-secretariat"]
    cli(console, secretariat, "federation", "publish", str(ceremony / "directory.json"))
    _wait_for_directory(configs, version=2)
    console.print("  Every node trusts directory version 2 now:")
    cli(console, configs["pt-central-authority"], "node", "status")
    authority = configs["pt-central-authority"]
    request_id = file_request(console, unit, authority)
    cli(console, authority, "request", "show", request_id)
    detail = expect_state(authority, request_id, "registered")
    if detail["signed_by"] != [rotated["key_id"]]:
        raise ConfigError("the request after the rotation was not signed with the new key")
    console.print(f"  Portugal registered it, signed with the new key {rotated['key_id']}.")


def _wait_for_directory(configs: dict[str, NodeConfig], *, version: int) -> None:
    deadline = time.monotonic() + DIRECTORY_WAIT_S
    for config in configs.values():
        while True:
            status = json.loads(
                cli(Console(quiet=True), config, "node", "status", "--json", show=False)
            )
            if status["directory_version"] >= version:
                break
            if time.monotonic() > deadline:
                raise ConfigError(f"{config.agency_id} did not fetch directory version {version}")
            time.sleep(0.2)


def _start(
    console: Console, configs: dict[str, NodeConfig], workdir: Path
) -> list[subprocess.Popen[bytes]]:
    step(console, "3. The nodes start", "Each runs `comity node serve` as its own process.")
    processes = [
        spawn_node(config, workdir / f"{agency_id}.log") for agency_id, config in configs.items()
    ]
    for (agency_id, config), process in zip(configs.items(), processes, strict=True):
        wait_until_serving(config, process)
        console.print(f"  {agency_id} is serving on {config.listen}")
    return processes


def _walk_through(console: Console, configs: dict[str, NodeConfig]) -> str:
    """Steps 4-7: the preservation request filed, registered and receipted; its id."""
    unit, authority, other, _ = (configs[a.agency_id] for a in AGENCIES)
    step(
        console,
        "4. The cybercrime unit files an expedited preservation request",
        "An investigator at ee-cyber-unit asks Portugal to preserve the accounts and posts "
        "behind a (fictional) doxxing campaign against an activist, under Budapest Convention "
        "Art. 29. The node checks the form against its schema, canonicalises the indicators, "
        "signs it, seals it to Portugal's key and delivers it over mutual TLS.",
    )
    request_id = file_request(console, unit, authority)
    step(
        console,
        "5. Portugal's node has registered it",
        "It checked the TLS peer, the signature and the seal before reading a byte of the "
        "form, validated the form again, stored it, and signed a receipt.",
    )
    cli(console, authority, "request", "show", request_id, "--form")
    expect_state(authority, request_id, "registered")
    step(
        console,
        "6. The unit holds Portugal's signed receipt",
        "The receipt carries the digest of exactly what Portugal received; the unit's node "
        "verified the signature and compared the digest with what it sent.",
    )
    cli(console, unit, "request", "show", request_id)
    detail = expect_state(unit, request_id, "delivered")
    if not detail["receipt_verified"]:
        raise ConfigError("the receipt at the sender is not verified")
    step(console, "7. Ireland saw nothing", "The request went only to its addressee.")
    cli(console, other, "request", "list")
    if json.loads(cli(console, other, "request", "list", "--json", show=False)):
        raise ConfigError("the third agency unexpectedly holds a request")
    return request_id


def _audit(console: Console, configs: dict[str, NodeConfig]) -> None:
    secretariat = configs["coe-secretariat"]
    parties = [a.agency_id for a in AGENCIES[:3]]
    step(
        console,
        "13. The treaty secretariat audits the three logs",
        "Every node logged its side of the exchange in a Merkle log, in the same transaction "
        "as the exchange itself, with public fields only (case details are salted "
        "commitments). The secretariat checks each node's signed checkpoint, recomputes its "
        "root from every leaf, requires that at least two other members' witnesses cosigned "
        "it, and matches both ends of every exchange, without reading a case.",
    )
    time.sleep(WITNESS_WAIT_S)  # let the witnesses cosign the newest checkpoints
    cli(console, secretariat, "audit", "reconcile", "--quorum", "2", *parties)
    cli(console, secretariat, "audit", "report", "--format", "csv", *parties)


def _release_to_court(
    console: Console, workdir: Path, configs: dict[str, NodeConfig], request_id: str
) -> None:
    authority, secretariat = configs["pt-central-authority"], configs["coe-secretariat"]
    step(
        console,
        "14. Portugal releases the record of the request to a court",
        "A court order asks what Portugal's log commits to for the first request. Portugal "
        "writes offline proof bundles (C2SP tlog-proof: checkpoint, inclusion proof, the leaf "
        "and its openings) and logs the release itself; anyone holding the directory checks a "
        "bundle without asking Portugal.",
    )
    out = workdir / "court"
    cli(
        console,
        authority,
        *("audit", "prove", request_id, "--role", "court", "--order", "PT-TRIB-2026-881"),
        *("--reason", "criminal proceedings", "--out", str(out)),
    )
    bundle = out / "pt-central-authority-0.tlog-proof"
    cli(console, secretariat, "audit", "check-proof", str(bundle))


def _tamper(console: Console, configs: dict[str, NodeConfig]) -> None:
    secretariat = configs["coe-secretariat"]
    step(
        console,
        "15. Someone alters Portugal's log behind its back",
        "One leaf is rewritten directly in Portugal's database. The next audit catches it.",
    )
    _rewrite_first_leaf(configs["pt-central-authority"])
    error = cli(
        console, secretariat, "audit", "verify", "pt-central-authority", expect_failure=True
    )
    if "audit_failed" not in error:
        raise ConfigError("the tampered log was not caught")


def _overlap(console: Console, workdir: Path, configs: dict[str, NodeConfig]) -> str:
    """Step 16; the id of the unit's indicator set."""
    unit, ireland = configs["ee-cyber-unit"], configs["ie-central-authority"]
    step(
        console,
        "16. Two agencies find out how much their cases overlap, and nothing more",
        "Estonia's unit and Ireland's authority each hold the accounts of their own harassment "
        "case in an AMBER+STRICT indicator set. A private set intersection tells Estonia how "
        "many accounts the two cases share, without either side seeing the other's list. "
        "Estonia then shares its set with Ireland, which its label allows, and nowhere else.",
    )
    cases = {
        "ee": (unit, "ie-central-authority", [f"chirper:@orbit_watch_{i}" for i in range(20)]),
        "ie": (ireland, "ee-cyber-unit", [f"chirper:@orbit_watch_{i}" for i in range(14, 30)]),
    }
    set_ids = {}
    for name, (config, partner, accounts) in cases.items():
        out = cli(
            console,
            config,
            *("indicators", "create", "--tlp", "amber+strict", "--recipient", partner),
        )
        set_ids[name] = out.split("set ")[1].split()[0]
        path = workdir / f"{name}-accounts.json"
        path.write_text(json.dumps([{"type": "platform_account", "value": a} for a in accounts]))
        cli(console, config, "indicators", "import", set_ids[name], str(path))
    answer = cli(
        console,
        unit,
        *("overlap", "check", "--with", "ie-central-authority", "--json"),
        *("--reason", "doxxing campaign against a journalist: do the cases share accounts?"),
    )
    if json.loads(answer)["shared"] != 6:
        raise ConfigError("the overlap check did not find the six shared accounts")
    cli(console, unit, "indicators", "share", set_ids["ee"], "--with", "ie-central-authority")
    cli(
        console,
        unit,
        *("indicators", "share", set_ids["ee"], "--with", "pt-central-authority"),
        expect_failure=True,
    )
    return set_ids["ee"]


def _rewrite_first_leaf(config: NodeConfig) -> None:
    path = config.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "UPDATE audit_leaf SET leaf = CAST(replace(CAST(leaf AS TEXT), 'preservation', "
            "'production') AS BLOB) WHERE idx = 0"
        )


def _shut_down(console: Console, processes: list[subprocess.Popen[bytes]]) -> int:
    step(
        console,
        "19. Shutting down",
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
        "receiving authority, signed receipt verified at the sender, logs audited, a record "
        "proven to a court and the tampering caught; a signing key rotated without downtime; "
        "two cases' overlap counted privately and an indicator set shared as its label allows; the "
        "cases linked into a campaign and coordinated preservation requests filed."
    )
    return 0


def _print_logs(console: Console, workdir: Path) -> None:
    for log in sorted(workdir.glob("*.log")):
        console.print(Rule(log.name))
        console.print(log.read_text(errors="replace")[-3000:], markup=False)
