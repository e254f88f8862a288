# SPDX-License-Identifier: Apache-2.0
"""C2SP signed notes, checkpoints (tlog-checkpoint) and witness cosignatures
(tlog-cosignature, ``cosignature/v1``), with Ed25519. Pure: no I/O.

A note's text is everything before its last blank line; each signature line is an em dash,
a space, the key name, a space, and base64 of a 4-byte key id followed by the signature. The
key id selects a candidate key; only the signature decides.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from node.errors import ComityError, ErrorKind

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
EM_DASH = "\u2014"
MAX_NOTE_BYTES = 1 << 20


class NoteError(ComityError):
    """A note, checkpoint or cosignature that is malformed or does not verify."""

    kind = ErrorKind.INVALID_INPUT
    code = "bad_note"


@dataclass(frozen=True)
class NoteVerifier:
    """A public key that may sign notes: name, signature type, key id, Ed25519 key."""

    name: str
    key_type: int
    key_id: bytes
    public_key: bytes

    @classmethod
    def for_key(cls, name: str, public_key: bytes, *, key_type: int = ED25519) -> NoteVerifier:
        return cls(name, key_type, note_key_id(name, key_type, public_key), public_key)

    def text(self) -> str:
        """The verifier key string: ``<name>+<hex key id>+<base64(type || key)>``."""
        encoded = base64.b64encode(bytes([self.key_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """Parse a verifier key string.

        Raises:
            NoteError: malformed, or the key id does not match name and key.
        """
        name, sep, rest = text.partition("+")
        hex_id, sep2, b64 = rest.partition("+")
        if not (sep and sep2 and _valid_name(name)):
            raise NoteError("verifier key must be <name>+<hex key id>+<base64 key>")
        try:
            key_id, raw = bytes.fromhex(hex_id), base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error) as e:
            raise NoteError("verifier key has a malformed key id or key") from e
        if len(key_id) != 4 or len(raw) != 33:
            raise NoteError("verifier key must carry a 4-byte id and a type byte + 32-byte key")
        verifier = cls.for_key(name, raw[1:], key_type=raw[0])
        if verifier.key_id != key_id:
            raise NoteError("verifier key id does not match its name and key")
        return verifier


def note_key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def sign_note(text: str, *, name: str, key: SigningKey) -> str:
    """``text`` (which must end in a newline) signed by ``key`` under ``name``."""
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("note text must end with a newline and contain no blank line")
    key_id = note_key_id(name, ED25519, bytes(key.verify_key))
    signature = key.sign(text.encode()).signature
    return f"{text}\n{_signature_line(name, key_id + signature)}"


def add_signature_line(note: str, name: str, payload: bytes) -> str:
    return note + _signature_line(name, payload)


def _signature_line(name: str, payload: bytes) -> str:
    return f"{EM_DASH} {name} {base64.b64encode(payload).decode()}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    payload: bytes
    """What follows the key id: the signature, or for cosignatures time + signature."""


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """The signed text and the signature lines of a note (nothing verified yet).

    Raises:
        NoteError: the note is not in signed-note form.
    """
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise NoteError("note is larger than 1 MiB")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("note has no blank line before its signatures")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    if not lines:
        raise NoteError("note has no signature")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> NoteSignature:
    prefix, _, rest = line.partition(" ")
    name, _, b64 = rest.partition(" ")
    if prefix != EM_DASH or not _valid_name(name):
        raise NoteError("signature line must be '\u2014 <name> <base64>'")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error) as e:
        raise NoteError(f"signature of {name} is not base64") from e
    if len(raw) < 5:
        raise NoteError(f"signature of {name} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def open_note(note: str, verifiers: Sequence[NoteVerifier]) -> tuple[str, list[str]]:
    """Verify a note; return its text and the names of the known keys that signed it.

    Unknown signers are ignored; a known key whose signature fails is an error.

    Raises:
        NoteError: malformed, a known key's signature fails, or no known key signed.
    """
    text, signatures = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers if v.key_type == ED25519}
    signed_by: list[str] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        try:
            VerifyKey(verifier.public_key).verify(text.encode(), sig.payload)
        except (BadSignatureError, ValueError) as e:
            raise NoteError(f"signature of {sig.name} does not verify") from e
        signed_by.append(sig.name)
    if not signed_by:
        raise NoteError("note is not signed by any known key")
    return text, signed_by


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint's body (the signed text of its note).

        Raises:
            NoteError: not origin, decimal size and base64 32-byte root.
        """
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("checkpoint must have origin, size and root lines")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin or not size.isdigit() or (size != "0" and size.startswith("0")):
            raise NoteError("checkpoint origin is empty or size is not a decimal number")
        try:
            root_bytes = base64.b64decode(root, validate=True)
        except (ValueError, binascii.Error) as e:
            raise NoteError("checkpoint root is not base64") from e
        if len(root_bytes) != 32:
            raise NoteError("checkpoint root must be 32 bytes")
        return cls(origin=origin, size=int(size), root=root_bytes, extensions=tuple(lines[3:-1]))


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(note: str, *, name: str, key: SigningKey, timestamp: int) -> str:
    """Add a witness cosignature line (``cosignature/v1``) to a signed checkpoint note."""
    text, _ = split_note(note)
    signature = key.sign(cosignature_message(text, timestamp)).signature
    key_id = note_key_id(name, COSIGNATURE_V1, bytes(key.verify_key))
    return add_signature_line(note, name, key_id + struct.pack(">Q", timestamp) + signature)


def verify_cosignatures(note: str, witnesses: Mapping[str, bytes]) -> dict[str, int]:
    """The witnesses (name -> Ed25519 key) that cosigned ``note``, with their times.

    Raises:
        NoteError: malformed, or a known witness's cosignature fails.
    """
    text, signatures = split_note(note)
    ids = {(n, note_key_id(n, COSIGNATURE_V1, k)): k for n, k in witnesses.items()}
    found: dict[str, int] = {}
    for sig in signatures:
        key = ids.get((sig.name, sig.key_id))
        if key is None:
            continue
        if len(sig.payload) != 72:
            raise NoteError(f"cosignature of {sig.name} must be time + 64-byte signature")
        (timestamp,) = struct.unpack(">Q", sig.payload[:8])
        try:
            VerifyKey(key).verify(cosignature_message(text, timestamp), sig.payload[8:])
        except BadSignatureError as e:
            raise NoteError(f"cosignature of {sig.name} does not verify") from e
        found[sig.name] = timestamp
    return found
