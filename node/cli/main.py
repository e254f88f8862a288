# SPDX-License-Identifier: Apache-2.0
"""Entry point of the ``comity`` command. Errors are caught once, here."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from node.audit.disclosure import ROLES
from node.audit.policy import DEFAULT_PROOF_QUORUM
from node.cli.lazy import LazyModule
from node.crypto.keys import ROTATABLE
from node.errors import ComityError
from node.model.lifecycle import REFUSAL_GROUNDS

if TYPE_CHECKING:
    from node.cli import (
        audit_cmd,
        evidence_cmd,
        federation_cmd,
        forms_cmd,
        indicators_cmd,
        node_cmd,
        proof_cmd,
        request_cmd,
        review_cmd,
    )
else:
    # Each command imports what it needs when it runs: `comity request list` need not load the
    # node runtime, the audit verifier, numpy and STIX (seconds per call otherwise).
    audit_cmd = LazyModule("node.cli.audit_cmd")
    evidence_cmd = LazyModule("node.cli.evidence_cmd")
    federation_cmd = LazyModule("node.cli.federation_cmd")
    forms_cmd = LazyModule("node.cli.forms_cmd")
    indicators_cmd = LazyModule("node.cli.indicators_cmd")
    node_cmd = LazyModule("node.cli.node_cmd")
    proof_cmd = LazyModule("node.cli.proof_cmd")
    request_cmd = LazyModule("node.cli.request_cmd")
    review_cmd = LazyModule("node.cli.review_cmd")
# These add their own subcommands, so they load with the parser; they import little.
from node.cli import campaign_cmd, groups_cmd, overlap_cmd, sightings_cmd

Handler = Callable[[argparse.Namespace, Console], int]

DEFAULT_CONFIG = "comity.toml"


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("COMITY_CONFIG", DEFAULT_CONFIG)),
        help="node configuration file (default: $COMITY_CONFIG or ./comity.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comity",
        description="Comity: signed, sealed cross-border legal assistance requests.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _node_commands(commands.add_parser("node", help="set up and run this agency's node"))
    _federation_commands(
        commands.add_parser("federation", help="the signed federation directory (key ceremony)")
    )
    _request_commands(commands.add_parser("request", help="file, follow and answer requests"))
    _review_commands(commands.add_parser("review", help="review and decide inbound requests"))
    _forms_commands(commands.add_parser("forms", help="request types, fields, legal bases"))
    _evidence_commands(commands.add_parser("evidence", help="return, follow and fetch evidence"))
    _audit_commands(commands.add_parser("audit", help="verify other nodes' audit logs"))
    _indicator_commands(
        commands.add_parser("indicators", help="indicator sets, their TLP labels and sharing")
    )
    overlap = commands.add_parser("overlap", help="private overlap checks with other agencies")
    overlap_sub = overlap.add_subparsers(dest="overlap_command", required=True, metavar="COMMAND")
    check = overlap_sub.add_parser(
        "check", help="how many of this agency's indicators another agency also holds"
    )
    check.add_argument("--with", dest="agency", required=True, help="agency id")
    check.add_argument(
        "--set", dest="set_id", action="append", help="only this set of ours (repeat)"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    _add_config_option(check)
    check.set_defaults(handler=indicators_cmd.check_overlap)
    overlap_cmd.add_commands(overlap_sub, _add_config_option)
    campaign_cmd.register(commands, _add_config_option)
    groups_cmd.add_commands(commands, _add_config_option)
    demo = commands.add_parser("demo", help="run three agencies' nodes and walk a case through")
    demo.add_argument("--keep", action="store_true", help="keep the demo's directory")
    demo.set_defaults(handler=_run_demo)
    return parser


def _node_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="node_command", required=True, metavar="COMMAND")
    init = sub.add_parser("init", help="create keys, TLS material and a config for an agency")
    init.add_argument("--dir", type=Path, required=True, help="directory to create")
    init.add_argument("--agency-id", required=True, help="e.g. ua-cyberpolice")
    init.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. UA")
    init.add_argument(
        "--role",
        action="append",
        required=True,
        help="requesting, central_authority, point_of_contact_24_7, secretariat or oversight "
        "(repeat for several)",
    )
    init.add_argument("--listen", default="127.0.0.1:7401", help="federation address to bind")
    init.add_argument("--endpoint", help="address peers dial (default: --listen)")
    init.add_argument("--database-url", help="default: sqlite:///comity.db in --dir")
    init.set_defaults(handler=node_cmd.init)
    serve = sub.add_parser("serve", help="run the node until SIGTERM")
    _add_config_option(serve)
    serve.set_defaults(handler=node_cmd.serve)
    status = sub.add_parser("status", help="pending deliveries per peer, and alerts")
    _add_config_option(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=request_cmd.node_status)
    rotate = sub.add_parser("rotate-key", help="make a new key (then ask the secretariat)")
    rotate.add_argument("--purpose", choices=ROTATABLE, default="signing", help="default signing")
    _add_config_option(rotate)
    rotate.add_argument("--json", action="store_true", help="machine-readable output")
    rotate.set_defaults(handler=node_cmd.rotate_key)
    retire = sub.add_parser("retire-key", help="stop loading an old key after its overlap")
    retire.add_argument("key_id", help="the old signing or encryption key's id")
    _add_config_option(retire)
    retire.set_defaults(handler=node_cmd.retire_key)


def _federation_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="federation_command", required=True, metavar="COMMAND")
    _federation_drafting(sub)
    _federation_key_commands(sub)
    _federation_signing(sub)


def _federation_command(
    sub: Any, name: str, help_: str, handler: Handler, *, edits: bool = True
) -> Any:
    """A ``federation`` subcommand; ``edits`` ones make a new draft version and may move its
    expiry."""
    cmd = sub.add_parser(name, help=help_)
    if name not in {"keygen", "merge"}:
        cmd.add_argument("directory", type=Path, help="the directory document (JSON)")
    if edits:
        cmd.add_argument(
            "--valid-days", type=int, help="also move expiry to this many days from now"
        )
    cmd.set_defaults(handler=handler)
    return cmd


def _federation_drafting(sub: Any) -> None:
    """Root keys, the first draft, and members coming and going."""
    command = functools.partial(_federation_command, sub)
    keygen = command("keygen", "make a root key pair (offline)", federation_cmd.keygen, edits=False)
    keygen.add_argument("--out", type=Path, required=True, help="private key file to create")
    keygen.add_argument("--encrypt", action="store_true", help="under a passphrase (asked for)")
    init = command("init", "draft version 1 with its root keys", federation_cmd.init, edits=False)
    init.add_argument("--root-key", action="append", required=True, help=".pub file or base64")
    init.add_argument("--threshold", type=int, required=True, help="root signatures required")
    init.add_argument("--valid-days", type=int, default=365, help="expiry (default 365 days)")
    add = command("add-member", "list agencies from their member cards", federation_cmd.add_member)
    add.add_argument("cards", nargs="+", type=Path, help="member.toml files from `node init`")
    remove = command("remove-member", "drop an agency", federation_cmd.remove_member)
    remove.add_argument("agency")
    endpoint = command(
        "set-endpoint", "change an agency's endpoint or certificate", federation_cmd.set_endpoint
    )
    endpoint.add_argument("agency")
    endpoint.add_argument("--endpoint", help="host:port peers dial")
    endpoint.add_argument("--certificate", type=Path, help="PEM certificate of its node")


def _federation_key_commands(sub: Any) -> None:
    """Members' keys rotated and revoked, the root keys replaced."""
    command = functools.partial(_federation_command, sub)
    rotate = command(
        "rotate-key",
        "add an agency's new key, old one valid for an overlap",
        federation_cmd.rotate_key,
    )
    rotate.add_argument("agency")
    rotate.add_argument(
        "--purpose", required=True, choices=("signing", "encryption", "checkpoint", "witness")
    )
    rotate.add_argument("--public-key", required=True, help="base64, or a file holding it")
    rotate.add_argument("--overlap-hours", type=float, default=24.0, help="default 24")
    revoke = command(
        "revoke-key", "refuse an agency's key from a time on", federation_cmd.revoke_key
    )
    revoke.add_argument("agency")
    revoke.add_argument("key_id", help="32 hex characters (see `federation show`)")
    revoke.add_argument("--at", help="YYYY-MM-DDTHH:MM:SSZ (default: now)")
    roots = command(
        "set-roots", "replace the root keys (old and new must sign)", federation_cmd.set_roots
    )
    roots.add_argument("--root-key", action="append", required=True, help=".pub file or base64")
    roots.add_argument("--threshold", type=int, required=True)


def _federation_signing(sub: Any) -> None:
    """A draft renewed, signed, merged, verified, shown and published."""
    command = functools.partial(_federation_command, sub)
    command("renew", "a new version with a later expiry", federation_cmd.renew)
    sign = command("sign", "add one root key holder's signature", federation_cmd.sign, edits=False)
    sign.add_argument("--key", type=Path, required=True, help="this holder's root key file")
    sign.add_argument("--out", type=Path, help="write the signed copy here (default: in place)")
    sign.add_argument("--trusted", type=Path, help="the version it replaces (root changes)")
    merge = command("merge", "merge separately signed copies", federation_cmd.merge, edits=False)
    merge.add_argument("copies", nargs="+", type=Path, help="signed copies of one draft")
    merge.add_argument("--out", type=Path, required=True, help="merged document to write")
    verify = command(
        "verify",
        "check it as a node would; list missing signatures",
        federation_cmd.verify,
        edits=False,
    )
    verify.add_argument("--trusted", type=Path, help="the version nodes trust now")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    show = command("show", "members, keys and signatures", federation_cmd.show, edits=False)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    publish = command(
        "publish",
        "hand a signed version to a node (the secretariat's)",
        federation_cmd.publish,
        edits=False,
    )
    _add_config_option(publish)


def _request_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="request_command", required=True, metavar="COMMAND")
    file_ = sub.add_parser("file", help="file a request to another agency")
    file_.add_argument("request_type", help="request type, e.g. preservation")
    file_.add_argument("--to", required=True, dest="recipient", help="recipient agency id")
    file_.add_argument("--form", required=True, type=Path, help="the form, a JSON file")
    file_.add_argument("--campaign", help="the campaign (its id) the request belongs to")
    request_cmd.add_file_options(file_)
    file_.set_defaults(handler=request_cmd.file_request)
    preview = sub.add_parser("preview", help="show exactly what filing would send; send nothing")
    preview.add_argument("request_type", help="request type, e.g. preservation")
    preview.add_argument("--to", required=True, dest="recipient", help="recipient agency id")
    preview.add_argument("--form", required=True, type=Path, help="the form, a JSON file")
    preview.set_defaults(handler=request_cmd.preview_request)
    for command in (file_, preview):
        command.add_argument(
            "--strip",
            dest="strip_identifiers",
            action="store_true",
            help="replace identifiers found in free text instead of refusing the request",
        )
    overdue = sub.add_parser("overdue", help="requests past their deadline, most overdue first")
    overdue.set_defaults(handler=request_cmd.overdue)
    list_ = sub.add_parser("list", help="list requests, newest first")
    list_.add_argument("--direction", choices=("outbound", "inbound"))
    request_cmd.add_list_options(list_)
    list_.set_defaults(handler=request_cmd.list_requests)
    show = sub.add_parser("show", help="one request with its form and signed receipt")
    show.add_argument("request_id")
    show.add_argument("--form", action="store_true", help="also print the form as stored")
    show.set_defaults(handler=request_cmd.show_request)
    for command in (file_, preview, list_, show, overdue):
        _add_config_option(command)
        command.add_argument("--json", action="store_true", help="machine-readable output")
    answer = _move(sub, "answer", "answer the requested party's questions", review_cmd.answer)
    answer.add_argument("--answer", action="append", required=True, help="one per question")
    withdraw = _move(sub, "withdraw", "withdraw the request", review_cmd.withdraw)
    withdraw.add_argument("--reason", required=True)
    extend = _move(
        sub, "extend", "ask for the preservation to be extended", review_cmd.ask_extension
    )
    extend.add_argument("--days", type=int, required=True, help="additional days (1-90)")
    extend.add_argument("--reason", required=True)
    close = _move(sub, "close", "close the exchange", review_cmd.close)
    close.add_argument("--reason")


def _move(sub: Any, name: str, help_: str, handler: Handler) -> argparse.ArgumentParser:
    """A command that sends one lifecycle message on request ID."""
    command: argparse.ArgumentParser = sub.add_parser(name, help=help_)
    command.add_argument("request_id")
    _add_config_option(command)
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(handler=handler)
    return command


def _evidence_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="evidence_command", required=True, metavar="COMMAND")
    send = sub.add_parser("send", help="return files for a request this agency received")
    send.add_argument("request_id")
    send.add_argument(
        "files", nargs="+", help="FILE or FILE:MEDIA/TYPE (read here, streamed to the node)"
    )
    send.add_argument("--note", help="what the evidence is (no personal data)")
    send.set_defaults(handler=evidence_cmd.send)
    list_ = sub.add_parser("list", help="a request's evidence and each file's progress")
    list_.add_argument("request_id")
    list_.set_defaults(handler=evidence_cmd.list_sets)
    fetch = sub.add_parser("fetch", help="write a received file, verified against its manifest")
    fetch.add_argument("request_id")
    fetch.add_argument("evidence_id")
    fetch.add_argument("item", type=int, help="the file's index in the manifest (see list)")
    fetch.add_argument("--out", type=Path, required=True, help="file to create")
    fetch.set_defaults(handler=evidence_cmd.fetch)
    verify = sub.add_parser("verify", help="re-check every stored file against its manifest")
    verify.add_argument("request_id")
    verify.set_defaults(handler=evidence_cmd.verify)
    for command in (send, list_, fetch, verify):
        _add_config_option(command)
    for command in (list_, verify):
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _forms_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="forms_command", required=True, metavar="COMMAND")
    list_ = sub.add_parser("list", help="every request type and its legal bases")
    list_.set_defaults(handler=forms_cmd.list_forms)
    show = sub.add_parser("show", help="a type's fields, profiles and example")
    show.add_argument("request_type")
    show.set_defaults(handler=forms_cmd.show_form)
    for command in (list_, show):
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _review_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="review_command", required=True, metavar="COMMAND")
    queue = sub.add_parser("queue", help="inbound requests waiting for a reviewer, oldest first")
    _add_config_option(queue)
    queue.add_argument("--json", action="store_true", help="machine-readable output")
    queue.set_defaults(handler=review_cmd.queue)
    show = sub.add_parser("show", help="one request with its form, receipt and history")
    show.add_argument("request_id")
    show.add_argument("--form", action="store_true", help="also print the form as received")
    _add_config_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=request_cmd.show_request)
    start = _move(sub, "start", "tell the requester the review has begun", review_cmd.start)
    start.add_argument("--note")
    clarify = _move(sub, "clarify", "ask the requester to clarify", review_cmd.clarify)
    clarify.add_argument("--question", action="append", required=True, help="repeat for several")
    decide = _move(sub, "decide", "accept, partially accept or refuse", review_cmd.decide)
    outcome = decide.add_mutually_exclusive_group(required=True)
    for flag in ("accept", "partial", "refuse"):
        outcome.add_argument(f"--{flag}", dest="outcome", action="store_const", const=flag)
    decide.add_argument(
        "--ground",
        action="append",
        choices=sorted(REFUSAL_GROUNDS),
        metavar="CODE",
        help="refusal ground code (repeat for several): "
        + "; ".join(f"{code}: {text}" for code, text in REFUSAL_GROUNDS.items()),
    )
    decide.add_argument("--scope", help="for --partial: what will and will not be done")
    decide.add_argument("--reason", required=True, help="the reasoning, in words")
    preserve = _move(sub, "preserve", "confirm the data is preserved", review_cmd.preserve)
    preserve.add_argument("--until", required=True, help="RFC 3339, e.g. 2027-03-01T00:00:00Z")
    preserve.add_argument("--note")
    extend = _move(sub, "extend", "extend the preservation", review_cmd.extend)
    extend.add_argument("--until", required=True, help="RFC 3339, e.g. 2027-03-31T00:00:00Z")
    execute = _move(sub, "execute", "report the request executed", review_cmd.execute)
    execute.add_argument("--summary", required=True)
    close = _move(sub, "close", "close the exchange", review_cmd.close)
    close.add_argument("--reason")


def _add_cosigned_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quorum",
        type=int,
        default=DEFAULT_PROOF_QUORUM,
        help="witness cosignatures each bundle's checkpoint must carry; a release that comes "
        f"before they do waits for them (default {DEFAULT_PROOF_QUORUM})",
    )
    parser.add_argument(
        "--wait",
        type=float,
        help="seconds to wait for the cosignatures (default: twice audit.cosign_interval_s, "
        "and 10 more)",
    )


def _audit_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = sub.add_parser("verify", help="verify a node's log: signature, leaves, consistency")
    verify.add_argument("agency", help="agency id of the node to audit (may be this node)")
    verify.add_argument(
        "--quorum",
        type=int,
        default=0,
        help="witness cosignatures the checkpoint must carry (default 0)",
    )
    _add_config_option(verify)
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(handler=audit_cmd.verify)
    rec = sub.add_parser(
        "reconcile", help="verify several logs and match both ends of every exchange"
    )
    rec.add_argument("agencies", nargs="*", help="agency ids (default: every member)")
    rec.add_argument(
        "--quorum",
        type=int,
        default=0,
        help="witness cosignatures each checkpoint must carry (default 0)",
    )
    _add_config_option(rec)
    rec.add_argument("--json", action="store_true", help="machine-readable output")
    rec.set_defaults(handler=audit_cmd.reconcile_logs)
    rep = sub.add_parser("report", help="transparency statistics from verified logs")
    rep.add_argument("agencies", nargs="*", help="agency ids (default: every member)")
    rep.add_argument("--format", choices=("json", "csv", "html"), default="json")
    rep.add_argument("--out", type=Path, help="file to write (default: standard output)")
    rep.add_argument(
        "--suppress-below",
        type=int,
        default=5,
        help="publish counts below this as '<N' (default 5)",
    )
    _add_config_option(rep)
    rep.set_defaults(handler=audit_cmd.report)
    compare = sub.add_parser(
        "compare", help="compare the checkpoint accepted for a log with another auditor's"
    )
    compare.add_argument("agency", help="agency id of the node whose log both audited")
    compare.add_argument(
        "file",
        type=Path,
        help="the other auditor's accepted checkpoint (audit-state/AGENCY.checkpoint)",
    )
    _add_config_option(compare)
    compare.set_defaults(handler=audit_cmd.compare)
    _proof_commands(sub)


def _indicator_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="indicators_command", required=True, metavar="COMMAND")
    handlers = _indicator_making(sub) | _indicator_holding(sub)
    for command, handler in handlers.items():
        _add_config_option(command)
        command.set_defaults(handler=handler)
    sightings_cmd.add_commands(sub, _add_config_option)


def _indicator_making(sub: Any) -> dict[Any, Handler]:
    """Commands that make a set, fill it from the command line or a file, or export it."""
    create = sub.add_parser("create", help="a new indicator set under a TLP 2.0 label")
    create.add_argument(
        "--tlp", required=True, help="TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED"
    )
    create.add_argument(
        "--recipient", action="append", help="an agency the set is for (repeat; AMBER and RED)"
    )
    create.add_argument(
        "--client",
        action="append",
        metavar="RECIPIENT:CLIENT",
        help="under TLP:AMBER, an agency a recipient may pass the set on to (repeat)",
    )
    add = sub.add_parser("add", help="add one indicator to one of this agency's sets")
    add.add_argument("set_id")
    add.add_argument(
        "type",
        help="platform_account, url, domain, ip, email, phone, content_sha256, pdq, campaign_id",
    )
    add.add_argument("value")
    add.add_argument("--confidence", type=int, help="0-100 (default 50)")
    add.add_argument("--expires", help="ISO 8601 instant after which it no longer applies")
    imp = sub.add_parser(
        "import", help="add a JSON list of indicators or a STIX 2.1 bundle, with progress"
    )
    imp.add_argument("set_id")
    imp.add_argument("file", type=Path)
    export = sub.add_parser("export", help="a set as a STIX 2.1 bundle with its TLP marking")
    export.add_argument("set_id")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    return {
        create: indicators_cmd.create,
        add: indicators_cmd.add,
        imp: indicators_cmd.import_file,
        export: indicators_cmd.export,
    }


def _indicator_holding(sub: Any) -> dict[Any, Handler]:
    """Commands over the sets this node holds: read, match, share, revoke."""
    listing = sub.add_parser("list", help="every set this node holds")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = sub.add_parser("show", help="one set with its indicators")
    show.add_argument("set_id")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    match = sub.add_parser("match-pdq", help="PDQ hashes held here near an image's hash")
    match.add_argument("hash", help="a PDQ hash, 64 hexadecimal characters")
    match.add_argument(
        "--max-distance", type=int, default=31, help="Hamming distance, at most 31 (default)"
    )
    match.add_argument("--json", action="store_true", help="machine-readable output")
    share = sub.add_parser("share", help="pass a set to another member, where TLP allows")
    share.add_argument("set_id")
    share.add_argument("--with", dest="recipient", required=True, help="agency id")
    revoke = sub.add_parser("revoke", help="revoke one of this agency's sets everywhere")
    revoke.add_argument("set_id")
    return {
        match: indicators_cmd.match_pdq,
        listing: indicators_cmd.list_sets,
        show: indicators_cmd.show,
        share: indicators_cmd.share,
        revoke: indicators_cmd.revoke,
    }


def _proof_commands(sub: Any) -> None:
    target_help = "a leaf index, or a request id for every leaf of that request"
    prove = sub.add_parser(
        "prove", help="offline proof bundles from this node's log, with openings by role"
    )
    prove.add_argument("target", help=target_help)
    prove.add_argument(
        "--role",
        choices=ROLES,
        default="agency",
        help="who receives it: agency and court get every opening, oversight the requesting "
        "unit and justification, secretariat none (default agency)",
    )
    prove.add_argument("--reason", required=True, help="why it is released (logged)")
    prove.add_argument("--order", help="the court order a court release answers")
    prove.add_argument("--recipient", help="agency id of the recipient, if it is a member")
    prove.add_argument("--out", type=Path, default=Path(), help="directory to write to")
    _add_cosigned_options(prove)
    _add_config_option(prove)
    prove.set_defaults(handler=proof_cmd.prove)
    open_ = sub.add_parser(
        "open", help="fetch proof bundles from another node as oversight body or secretariat"
    )
    open_.add_argument("agency", help="agency id of the node whose log holds the record")
    open_.add_argument("target", help=target_help)
    open_.add_argument("--reason", required=True, help="why it is needed (logged there)")
    open_.add_argument("--out", type=Path, default=Path(), help="directory to write to")
    _add_cosigned_options(open_)
    _add_config_option(open_)
    open_.set_defaults(handler=proof_cmd.open_remote)
    check = sub.add_parser("check-proof", help="verify a .tlog-proof bundle offline")
    check.add_argument("file", type=Path)
    check.add_argument(
        "--quorum",
        type=int,
        default=DEFAULT_PROOF_QUORUM,
        help="witness cosignatures required; the directory sets no quorum, so at least one "
        f"other member must have cosigned (default {DEFAULT_PROOF_QUORUM})",
    )
    _add_config_option(check)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(handler=proof_cmd.check_proof)
    erase = sub.add_parser("erase-expired", help="erase now the openings whose retention has ended")
    _add_config_option(erase)
    erase.set_defaults(handler=proof_cmd.erase_expired)


def _run_demo(args: argparse.Namespace, console: Console) -> int:
    from node.cli import demo

    return demo.run(console, keep=args.keep)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args, console)
    except ComityError as e:
        errors.print(Text.assemble(("error: ", "bold red"), e.diagnostics()))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
