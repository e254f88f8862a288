# SPDX-License-Identifier: Apache-2.0
"""Kill campaigns: two real node processes under load, killed with SIGKILL at random moments.

A load thread files preservation requests at the sender through its Local socket and notes
every request the node reported as filed ("sent"). Meanwhile the sender, the receiver or both
are killed with SIGKILL and restarted, cycle after cycle. At the end the campaign waits for
the sender's outbox to drain, stops both nodes, reads both databases and reports what was
sent, delivered, lost, duplicated, and where the two sides disagree.

Usage (a long campaign): python -m ops.chaos.campaign --cycles 300 [--postgres URL]
[--replicas N] (N processes per node sharing its PostgreSQL database, port and outbox; each
kill takes down one replica while the others go on)
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import psycopg
import tomli_w
from sqlmodel import select

from node.cli.local_client import LocalClient
from node.cli.processes import listen_ports, spawn_node, wait_until_serving
from node.config import USER_ROLES, NodeConfig, init_node, load_config
from node.errors import ComityError
from node.federation.setup import federate
from node.forms.registry import schemas_dir
from node.storage.engine import create_engine, transaction
from node.storage.tables import Exchange, Message

SENDER, RECEIVER = "aa-cyber-unit", "bb-central-authority"

# Short waits and retries, so a campaign spends its time on kills, not on timers.
FAST_DELIVERY = {
    "file_wait_s": 0.2,
    "retry_base_s": 0.05,
    "retry_cap_s": 0.5,
    "poll_interval_s": 0.1,
}


@dataclass
class Report:
    cycles: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    delivered: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    undrained: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.disagreements or self.undrained)

    def lines(self) -> list[str]:
        return [
            f"kill cycles:     {self.cycles} ({dict(self.kills)})",
            f"requests sent:   {self.sent}",
            f"delivered:       {self.delivered}",
            f"lost:            {len(self.lost)}",
            f"duplicated:      {len(self.duplicated)}",
            f"disagreements:   {len(self.disagreements)}",
            f"still pending:   {self.undrained}",
        ]


def make_nodes(
    workdir: Path, database_urls: Callable[[str], str], *, replicas: int = 1
) -> dict[str, NodeConfig]:
    """Two nodes with their own databases, fast retries, and one signed directory.

    With ``replicas`` > 1 each node also gets replicas ``AGENCY/2`` … sharing its database,
    keys and port, each with its own local socket (its own ``comity-N.toml``).
    """
    configs = {}
    agencies = ((SENDER, "EE", "requesting"), (RECEIVER, "PT", "central_authority"))
    for (agency, country, role), port in zip(agencies, listen_ports(2), strict=True):
        config = init_node(
            directory=workdir / agency,
            agency_id=agency,
            country=country,
            roles=[role],
            listen=f"127.0.0.1:{port}",
            admin_roles=USER_ROLES,
        )
        document = tomllib.loads(config.config_path.read_text())
        document["storage"] = {"url": database_urls(agency)}
        document["delivery"] = FAST_DELIVERY
        document["federation"]["delivery_timeout_s"] = 2.0
        document["federation"]["share_port"] = replicas > 1
        config.config_path.write_text(tomli_w.dumps(document))
        configs[agency] = load_config(config.config_path)
        for number in range(2, replicas + 1):
            document["local"] = {"socket": f"comity-{number}.sock"}
            path = config.config_path.with_name(f"comity-{number}.toml")
            path.write_text(tomli_w.dumps(document))
            configs[f"{agency}/{number}"] = load_config(path)
    federate([configs[SENDER], configs[RECEIVER]], roots_dir=workdir / "roots")
    return configs


def replicas_of(configs: dict[str, NodeConfig], agency: str) -> list[str]:
    """The process names of one agency's node: ``agency`` and its replicas."""
    return [name for name in configs if name.split("/")[0] == agency]


class Nodes:
    """The two node processes, started, killed and restarted by name."""

    def __init__(self, configs: dict[str, NodeConfig], logs: Path) -> None:
        self.configs = configs
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = self.logs / f"{name.replace('/', '-')}.log"
        process = spawn_node(self.configs[name], log)
        self.processes[name] = process
        wait_until_serving(self.configs[name], process, timeout_s=60)

    def kill(self, agency: str) -> None:
        process = self.processes[agency]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


class Load:
    """Files requests at the sender (its replicas in turn) until stopped; remembers what the
    node said was filed."""

    def __init__(self, senders: list[NodeConfig], form: bytes) -> None:
        self.senders = senders
        self.form = form
        self.sent: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            turn += 1
            sender = self.senders[turn % len(self.senders)]
            try:
                with LocalClient(sender.local_socket) as client:
                    detail = client.file_request(
                        request_type="preservation", recipient=RECEIVER, form_json=self.form
                    )
                self.sent.add(detail.summary.request_id)
            except ComityError:
                time.sleep(0.05)  # the sender is down or restarting: not "sent"


def wait_for_drain(sender: NodeConfig, timeout_s: float) -> int:
    """Pending deliveries left once the outbox drained or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    pending = -1
    while time.monotonic() < deadline:
        with LocalClient(sender.local_socket) as client:
            pending = client.node_status().outbox_pending
        if pending == 0:
            return 0
        time.sleep(0.2)
    return pending


def compare(configs: dict[str, NodeConfig], sent: set[str], report: Report) -> None:
    """Read both databases and fill in delivered, lost, duplicated and disagreements."""
    outbound = exchanges(configs[SENDER], direction="outbound")
    inbound = exchanges(configs[RECEIVER], direction="inbound")
    inbound_messages = _messages_per_exchange(configs[RECEIVER])
    report.sent = len(sent)
    report.delivered = sum(1 for i in sent if inbound.get(i) == "registered")
    report.lost = sorted(i for i in sent if i not in inbound)
    report.duplicated = sorted(i for i, n in inbound_messages.items() if n > 1)
    for exchange_id, state in outbound.items():
        if exchange_id in inbound and state != "delivered":
            report.disagreements.append(f"{exchange_id}: sender {state}, receiver registered")
    report.disagreements += [f"{i}: unknown to the sender" for i in inbound if i not in outbound]
    report.disagreements += [f"{i}: reported sent, not stored" for i in sent if i not in outbound]


def exchanges(config: NodeConfig, *, direction: str) -> dict[str, str]:
    engine = create_engine(config.database_url)
    try:
        with transaction(engine) as session:
            rows = session.exec(select(Exchange).where(Exchange.direction == direction))
            return {row.id: row.state for row in rows}
    finally:
        engine.dispose()


def _messages_per_exchange(config: NodeConfig) -> Counter[str]:
    engine = create_engine(config.database_url)
    try:
        with transaction(engine) as session:
            return Counter(m.exchange_id for m in session.exec(select(Message)))
    finally:
        engine.dispose()


def run_campaign(
    configs: dict[str, NodeConfig],
    workdir: Path,
    *,
    cycles: int,
    seed: int,
    progress: Callable[[int, str], None] = lambda _cycle, _victim: None,
) -> Report:
    rng = random.Random(seed)  # noqa: S311 (fault schedule, not secrets)
    report = Report()
    nodes = Nodes(configs, workdir)
    form = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
    senders, receivers = replicas_of(configs, SENDER), replicas_of(configs, RECEIVER)
    try:
        for name in receivers + senders:  # one after the other: the first one migrates
            nodes.start(name)
        with Load([configs[name] for name in senders], form) as load:
            for cycle in range(cycles):
                time.sleep(rng.uniform(0.1, 0.8))
                victim = rng.choice((SENDER, RECEIVER, "both"))
                agencies = (SENDER, RECEIVER) if victim == "both" else (victim,)
                # With replicas, one replica of each victim agency dies; the others go on.
                victims = [rng.choice(replicas_of(configs, agency)) for agency in agencies]
                for name in victims:
                    nodes.kill(name)
                time.sleep(rng.uniform(0.0, 0.3))
                for name in victims:
                    nodes.start(name)
                report.kills[victim] += 1
                report.cycles = cycle + 1
                progress(cycle + 1, victim)
        report.undrained = wait_for_drain(configs[SENDER], timeout_s=120)
    finally:
        nodes.stop_all()
    compare(configs, load.sent, report)
    return report


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="comity-chaos-") as tmp:
        yield Path(tmp)


def main() -> int:
    parser = argparse.ArgumentParser(description="SIGKILL campaign against two Comity nodes.")
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    parser.add_argument("--postgres", metavar="URL", help="use PostgreSQL (one schema a node)")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="processes per node sharing its database (PostgreSQL)",
    )
    args = parser.parse_args()
    if args.replicas > 1 and not args.postgres:
        parser.error("--replicas needs --postgres: replicas share one PostgreSQL database")
    schemas: list[str] = []
    with _workdir() as workdir:
        urls = _database_urls(workdir, args.postgres, schemas)
        configs = make_nodes(workdir, urls, replicas=args.replicas)
        started = time.monotonic()
        try:
            report = run_campaign(
                configs,
                workdir,
                cycles=args.cycles,
                seed=args.seed,
                progress=lambda n, victim: print(
                    f"\rcycle {n}/{args.cycles}: killed {victim:<24}", end="", flush=True
                ),
            )
        finally:
            if args.postgres:
                _drop_schemas(args.postgres, schemas)
    print()
    print(
        f"seed {args.seed}, {time.monotonic() - started:.0f} s, database: "
        f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.replicas} process(es) per node"
    )
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _database_urls(workdir: Path, postgres: str | None, schemas: list[str]) -> Callable[[str], str]:
    if postgres is None:
        return lambda agency: f"sqlite:///{workdir / agency}.db"

    def schema_url(agency: str) -> str:
        schema = f"chaos_{agency.replace('-', '_')}_{os.getpid()}"
        with psycopg.connect(postgres.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            connection.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        separator = "&" if "?" in postgres else "?"
        return f"{postgres}{separator}options=-csearch_path%3D{schema}"

    return schema_url


def _drop_schemas(postgres: str, schemas: list[str]) -> None:
    with psycopg.connect(postgres.replace("+psycopg", ""), autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    sys.exit(main())
