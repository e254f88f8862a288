# SPDX-License-Identifier: Apache-2.0
"""``comity federation …``: the secretariat's key ceremony for the federation directory.

Root key holders each run ``keygen`` once, offline, and hand over only the public key. The
secretariat drafts a version (``init``, ``add-member``, ``rotate-key`` …), each holder signs
a copy offline (``sign``), the copies are merged (``merge``), checked (``verify``) and handed
to the secretariat's node (``publish``), from which every node fetches it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import os
import tempfile
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from rich.console import Console
from rich.table import Table

from node.cli import output
from node.cli.local_client import LocalClient
from node.config import load_config
from node.crypto.keys import KEY_BYTES, key_id, load_signing_key, save_signing_key
from node.errors import ConfigError, DirectoryError
from node.federation import ceremony
from node.federation.document import (
    SignedDirectory,
    format_instant,
    parse_directory,
    parse_instant,
)
from node.federation.rules import count_signatures, verify_initial, verify_update
from node.members import read_member_card
from node.timeutil import now_ms

HOUR_MS = 3600 * 1000
PASSPHRASE_ENV = "COMITY_ROOT_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret


def keygen(args: argparse.Namespace, console: Console) -> int:
    """A root key pair: the private key stays with its holder, the public key goes to the
    secretariat."""
    key = SigningKey.generate()
    save_signing_key(args.out, key, passphrase=_new_passphrase() if args.encrypt else None)
    public = base64.b64encode(bytes(key.verify_key)).decode("ascii")
    public_path = args.out.with_name(args.out.name + ".pub")
    public_path.write_text(public + "\n", encoding="ascii")
    console.print(f"Root key {key_id(bytes(key.verify_key))} written to {args.out} (private).")
    console.print(f"Public key in {public_path}: {public}")
    return 0


def init(args: argparse.Namespace, console: Console) -> int:
    if args.directory.exists():
        raise ConfigError(f"{args.directory} exists already; refusing to overwrite it")
    document = ceremony.new_directory(
        root_keys=[_public_key(text) for text in args.root_key],
        threshold=args.threshold,
        now_ms=now_ms(),
        valid_days=args.valid_days,
    )
    return _save(args.directory, document, console, "Drafted a new federation directory")


def add_member(args: argparse.Namespace, console: Console) -> int:
    document = _load(args.directory)
    for path in args.cards:
        card = read_member_card(_read_text(path), source=str(path))
        document = ceremony.add_member(document, card, now_ms=now_ms(), valid_days=args.valid_days)
    return _save(args.directory, document, console, f"Added {len(args.cards)} member(s)")


def remove_member(args: argparse.Namespace, console: Console) -> int:
    document = ceremony.remove_member(
        _load(args.directory), args.agency, now_ms=now_ms(), valid_days=args.valid_days
    )
    return _save(args.directory, document, console, f"Removed {args.agency}")


def set_endpoint(args: argparse.Namespace, console: Console) -> int:
    if args.endpoint is None and args.certificate is None:
        raise ConfigError("give --endpoint, --certificate or both")
    certificate = args.certificate.read_bytes() if args.certificate else None
    document = ceremony.set_endpoint(
        _load(args.directory),
        args.agency,
        endpoint=args.endpoint,
        tls_certificate=certificate,
        now_ms=now_ms(),
        valid_days=args.valid_days,
    )
    return _save(args.directory, document, console, f"Updated {args.agency}")


def rotate_key(args: argparse.Namespace, console: Console) -> int:
    if args.overlap_hours < 0:
        raise ConfigError("--overlap-hours must not be negative")
    document = ceremony.rotate_key(
        _load(args.directory),
        args.agency,
        purpose=args.purpose,
        new_key=_public_key(args.public_key),
        overlap_ms=int(args.overlap_hours * HOUR_MS),
        now_ms=now_ms(),
        valid_days=args.valid_days,
    )
    return _save(
        args.directory,
        document,
        console,
        f"Rotated the {args.purpose} key of {args.agency}; the old one stays valid "
        f"{args.overlap_hours:g} h",
    )


def revoke_key(args: argparse.Namespace, console: Console) -> int:
    now = now_ms()
    at = parse_instant(args.at) if args.at else now
    document = ceremony.revoke_key(
        _load(args.directory),
        args.agency,
        key=args.key_id,
        at_ms=at,
        now_ms=now,
        valid_days=args.valid_days,
    )
    return _save(
        args.directory,
        document,
        console,
        f"Revoked key {args.key_id} of {args.agency} from {format_instant(at)}",
    )


def set_roots(args: argparse.Namespace, console: Console) -> int:
    document = ceremony.set_roots(
        _load(args.directory),
        root_keys=[_public_key(text) for text in args.root_key],
        threshold=args.threshold,
        now_ms=now_ms(),
        valid_days=args.valid_days,
    )
    return _save(
        args.directory,
        document,
        console,
        "Replaced the root keys; a threshold of the old AND of the new roots must sign",
    )


def renew(args: argparse.Namespace, console: Console) -> int:
    document = ceremony.renew(_load(args.directory), now_ms=now_ms(), valid_days=args.valid_days)
    return _save(args.directory, document, console, "Renewed")


def sign(args: argparse.Namespace, console: Console) -> int:
    if args.key.suffix == ".pub":
        raise ConfigError(f"{args.key} is a public key file; sign with the private root key")
    document = _load(args.directory)
    key = load_signing_key(args.key, passphrase=_passphrase)
    ceremony.check_root_signer(document, key, trusted=_load(args.trusted) if args.trusted else None)
    document = ceremony.sign(document, key)
    target = args.out or args.directory
    return _save(target, document, console, f"Signed with {args.key}")


def merge(args: argparse.Namespace, console: Console) -> int:
    document = ceremony.merge([_load(path) for path in args.copies])
    return _save(args.out, document, console, f"Merged {len(args.copies)} signed copies")


def verify(args: argparse.Namespace, console: Console) -> int:
    """Check a directory as a node would; say which signatures are missing."""
    document = _load(args.directory)
    trusted = _load(args.trusted) if args.trusted else None
    result = _verdict(document, trusted)
    if args.json:
        output.print_json(console, result)
    else:
        for line in result["checks"]:
            mark = "[green]ok[/green]  " if line["ok"] else "[bold red]FAIL[/bold red]"
            console.print(f"{mark} {line['check']}: {line['detail']}")
        verdict = "acceptable" if result["acceptable"] else "NOT acceptable"
        console.print(f"Version {document.version} is {verdict} to a node{_against(trusted)}.")
    return 0 if result["acceptable"] else 1


def _against(trusted: SignedDirectory | None) -> str:
    return f" trusting version {trusted.version}" if trusted else " starting from it"


def _verdict(document: SignedDirectory, trusted: SignedDirectory | None) -> dict[str, Any]:
    own = count_signatures(document, document.body.roots)
    unknown = ceremony.unknown_signers(document, trusted=trusted)
    checks = [
        {"check": "own root signatures", "ok": own.met, "detail": own.describe()},
        {
            "check": "no signatures by unknown keys",
            "ok": not unknown,
            "detail": ", ".join(unknown) or "none",
        },
    ]
    if trusted is not None:
        old = count_signatures(document, trusted.body.roots)
        checks.append(
            {
                "check": f"signatures of version {trusted.version}'s roots",
                "ok": old.met,
                "detail": old.describe(),
            }
        )
        checks.append(
            {
                "check": "newer version",
                "ok": document.version > trusted.version,
                "detail": f"{document.version} after {trusted.version}",
            }
        )
    expires = document.body.expires_ms
    checks.append(
        {"check": "not expired", "ok": now_ms() < expires, "detail": format_instant(expires)}
    )
    try:
        if trusted is None:
            verify_initial(document, now_ms=now_ms())
        else:
            verify_update(trusted, document, now_ms=now_ms())
        acceptable, refusal = True, None
    except DirectoryError as e:
        acceptable, refusal = False, e.rule
    if acceptable and unknown:
        # A node ignores such signatures, but they claim a consent no root holder gave.
        acceptable, refusal = False, "unknown-signer"
    return {
        "version": document.version,
        "acceptable": acceptable,
        "refused_by_rule": refusal,
        "checks": checks,
    }


def show(args: argparse.Namespace, console: Console) -> int:
    document = _load(args.directory)
    summary = _summary(document)
    if args.json:
        output.print_json(console, summary)
        return 0
    body = document.body
    console.print(
        f"Federation directory version {body.version}, issued {summary['issued_at']}, "
        f"expires {summary['expires']}"
    )
    console.print(
        f"Root keys ({body.roots.threshold} of {len(body.roots.keys)} must sign): "
        f"{', '.join(sorted(body.roots.keys))}"
    )
    own = count_signatures(document, body.roots)
    console.print(f"Signatures: {own.describe()}")
    table = Table("agency", "country", "roles", "endpoint", "key", "purpose", "status")
    for member in summary["members"]:
        for index, key in enumerate(member["keys"]):
            first = index == 0
            table.add_row(
                member["agency_id"] if first else "",
                member["country"] if first else "",
                ", ".join(member["roles"]) if first else "",
                member["endpoint"] if first else "",
                key["key_id"],
                key["purpose"],
                key["status"],
            )
    console.print(table)
    return 0


def _summary(document: SignedDirectory) -> dict[str, Any]:
    now = now_ms()
    body = document.body
    return {
        "version": body.version,
        "issued_at": format_instant(body.issued_at_ms),
        "expires": format_instant(body.expires_ms),
        "roots": {"threshold": body.roots.threshold, "key_ids": sorted(body.roots.keys)},
        "signed_by": sorted(count_signatures(document, body.roots).valid),
        "members": [
            {
                "agency_id": m.agency_id,
                "country": m.country,
                "roles": sorted(m.roles),
                "endpoint": m.endpoint,
                "tls_fingerprint": m.tls_fingerprint,
                "keys": [
                    {
                        "key_id": k.key_id,
                        "purpose": k.purpose,
                        "status": _key_status(
                            k.valid_from_ms, k.valid_until_ms, k.revoked_at_ms, now
                        ),
                    }
                    for k in m.keys
                ],
            }
            for m in body.members
        ],
    }


def _key_status(valid_from: int, valid_until: int | None, revoked_at: int | None, now: int) -> str:
    if revoked_at is not None and now >= revoked_at:
        return f"revoked {format_instant(revoked_at)}"
    if now < valid_from:
        return f"valid from {format_instant(valid_from)}"
    if valid_until is not None and now >= valid_until:
        return f"expired {format_instant(valid_until)}"
    if valid_until is not None:
        return f"active until {format_instant(valid_until)}"
    if revoked_at is not None:
        return f"active, revoked from {format_instant(revoked_at)}"
    return "active"


def publish(args: argparse.Namespace, console: Console) -> int:
    """Hand a signed version to a node (the secretariat's): it verifies it, trusts it, and
    serves it to every peer that asks."""
    config = load_config(args.config)
    data = _read_bytes(args.directory)
    parse_directory(data)
    with LocalClient(config.local_socket) as client:
        answer = client.install_directory(data)
    if answer.changed:
        console.print(f"Node {config.agency_id} trusts directory version {answer.version} now.")
    else:
        console.print(f"Node {config.agency_id} already trusts version {answer.version}.")
    return 0


# --- files -----------------------------------------------------------------------------------


def _passphrase() -> bytes:
    """A root key's passphrase: from the environment (scripts, tests) or asked for."""
    given = os.environ.get(PASSPHRASE_ENV)
    if given is None:
        given = getpass.getpass("Passphrase of the root key: ")
    return given.encode("utf-8")


def _new_passphrase() -> bytes:
    if PASSPHRASE_ENV in os.environ:
        return _passphrase()
    first = getpass.getpass("Passphrase for the new root key: ")
    if getpass.getpass("The same passphrase again: ") != first:
        raise ConfigError("the passphrases differ; nothing was written")
    return first.encode("utf-8")


def _public_key(text: str) -> bytes:
    """A base64 public key, given inline or as the path of a ``.pub`` file."""
    path = Path(text)
    if path.is_file():
        text = path.read_text(encoding="ascii").strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError(f"{text!r} is neither a .pub file nor a base64 public key") from e
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"a public key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e


def _read_text(path: Path) -> str:
    return _read_bytes(path).decode("utf-8", errors="replace")


def _load(path: Path) -> SignedDirectory:
    return parse_directory(_read_bytes(path))


def _save(path: Path, document: SignedDirectory, console: Console, done: str) -> int:
    """Write atomically (a crash never leaves half a directory) and say what is missing."""
    handle, temporary = tempfile.mkstemp(dir=path.resolve().parent, prefix=".directory-")
    with os.fdopen(handle, "wb") as out:
        out.write(document.to_json())
    Path(temporary).replace(path)
    count = count_signatures(document, document.body.roots)
    console.print(f"{done}: {path}, version {document.version}.")
    if count.met:
        console.print(f"Signed by enough root keys: {count.describe()}.")
    else:
        missing = document.body.roots.threshold - len(count.valid)
        console.print(f"Needs {missing} more root signature(s): {count.describe()}.")
    return 0
