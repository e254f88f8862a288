# SPDX-License-Identifier: Apache-2.0
"""Offline proof bundles for one audit record, in the C2SP ``tlog-proof@v1`` text format.

A bundle is what an agency hands a court, or an oversight body fetches: the log's signed
checkpoint (with any witness cosignatures), the record's index and RFC 6962 inclusion proof,
and, in the format's ``extra`` line, the leaf itself with the openings released to the
recipient. ``extra`` is not authenticated by the format; it needs no trust here because the
leaf must hash to the proven record and every opening must open one of the leaf's
commitments. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from node.audit.leaf import Leaf, Opening, PublicFields
from node.audit.merkle import verify_inclusion
from node.audit.note import NoteError, NoteVerifier, verify_cosignatures
from node.audit.verify import open_checkpoint
from node.errors import ComityError, ErrorKind

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_BYTES = 256 * 1024
MAX_PROOF_HASHES = 64


class BundleError(ComityError):
    """A proof bundle that is malformed or does not prove what it claims."""

    kind = ErrorKind.INVALID_INPUT
    code = "bad_proof_bundle"


@dataclass(frozen=True, kw_only=True)
class ProofBundle:
    index: int
    leaf: bytes
    openings: tuple[Opening, ...]
    proof: tuple[bytes, ...]
    checkpoint: str
    """The log's signed checkpoint note, cosignature lines included."""

    def text(self) -> str:
        lines = [PROOF_HEADER, f"extra {_encode_extra(self.leaf, self.openings)}"]
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> ProofBundle:
        """Raises: BundleError naming the line that is wrong."""
        if len(text.encode()) > MAX_PROOF_BYTES:
            raise BundleError("a proof bundle is at most 256 KiB")
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise BundleError("no empty line between the proof and the checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise BundleError(f"the first line must be {PROOF_HEADER!r}")
        if len(lines) < 3 or not lines[1].startswith("extra "):
            raise BundleError("a Comity bundle carries its leaf on an 'extra' line")
        leaf, openings = _decode_extra(lines[1].removeprefix("extra "))
        index = _index(lines[2])
        hashes = lines[3:]
        if len(hashes) > MAX_PROOF_HASHES:
            raise BundleError(f"an inclusion proof has at most {MAX_PROOF_HASHES} hashes")
        return cls(
            index=index,
            leaf=leaf,
            openings=openings,
            proof=tuple(_hash(line, n) for n, line in enumerate(hashes)),
            checkpoint=checkpoint,
        )


@dataclass(frozen=True, kw_only=True)
class ProvenRecord:
    """What a verified bundle establishes."""

    origin: str
    index: int
    size: int
    public: PublicFields
    opened: dict[str, str]
    witnesses: dict[str, int] = field(default_factory=dict)
    """Witnesses whose cosignatures verified, with the time each cosigned."""


def verify_bundle(
    bundle: ProofBundle,
    verifier: NoteVerifier,
    *,
    witnesses: Mapping[str, bytes] | None = None,
    quorum: int = 0,
) -> ProvenRecord:
    """Check a bundle against the log's checkpoint key and a witness policy.

    Raises:
        AuditError: the checkpoint's signature or origin is wrong.
        BundleError: the leaf is not in the checkpointed tree, an opening opens nothing in
            the leaf, or too few witnesses cosigned.
    """
    checkpoint = open_checkpoint(bundle.checkpoint, verifier)
    try:
        verify_inclusion(
            leaf=bundle.leaf,
            index=bundle.index,
            size=checkpoint.size,
            proof=bundle.proof,
            root=checkpoint.root,
        )
        leaf = Leaf.from_bytes(bundle.leaf)
        cosigned = verify_cosignatures(bundle.checkpoint, witnesses or {})
    except (ComityError, NoteError) as e:
        raise BundleError(f"record {bundle.index} is not proven: {e.message}") from e
    for opening in bundle.openings:
        if not leaf.opens(opening):
            raise BundleError(f"the opening of {opening.name!r} opens nothing in the leaf")
    if len(cosigned) < quorum:
        raise BundleError(
            f"the checkpoint is cosigned by {len(cosigned)} witness(es), the policy asks "
            f"for {quorum}"
        )
    return ProvenRecord(
        origin=checkpoint.origin,
        index=bundle.index,
        size=checkpoint.size,
        public=leaf.public,
        opened={o.name: o.value for o in bundle.openings},
        witnesses=cosigned,
    )


def _encode_extra(leaf: bytes, openings: Sequence[Opening]) -> str:
    document = {
        "leaf": base64.b64encode(leaf).decode(),
        "openings": [
            {"name": o.name, "value": o.value, "salt": base64.b64encode(o.salt).decode()}
            for o in openings
        ],
    }
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(data).decode()


def _decode_extra(value: str) -> tuple[bytes, tuple[Opening, ...]]:
    try:
        document = json.loads(base64.b64decode(value, validate=True))
        leaf = base64.b64decode(document["leaf"], validate=True)
        openings = tuple(
            Opening(
                name=str(o["name"]),
                value=str(o["value"]),
                salt=base64.b64decode(o["salt"], validate=True),
            )
            for o in document["openings"]
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise BundleError("the 'extra' line is not a Comity leaf with its openings") from e
    return leaf, openings


def _index(line: str) -> int:
    value = line.removeprefix("index ")
    decimal = value.isascii() and value.isdigit() and (value == "0" or value[0] != "0")
    if value == line or not decimal:
        raise BundleError("the line after 'extra' must be 'index <decimal>'")
    return int(value)


def _hash(line: str, n: int) -> bytes:
    try:
        digest = base64.b64decode(line, validate=True)
    except ValueError as e:  # binascii.Error, or a character outside ASCII
        raise BundleError(f"proof hash {n} is not base64") from e
    if len(digest) != 32:
        raise BundleError(f"proof hash {n} is not 32 bytes")
    return digest
