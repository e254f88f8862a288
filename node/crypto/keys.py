# SPDX-License-Identifier: Apache-2.0
"""An agency's keys, each for one purpose: Ed25519 for signing messages, X25519 for sealing
them, Ed25519 for signing audit-log checkpoints, Ed25519 for cosigning others' checkpoints as a
witness."""

from __future__ import annotations

import base64
import binascii
import hashlib
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import nacl.utils
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey
from nacl.pwhash import argon2id
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from node.errors import ConfigError
from node.files import replace_private_file, write_private_file
from node.ids import KeyId

SIGNING_FILE = "signing.key"
ENCRYPTION_FILE = "encryption.key"
CHECKPOINT_FILE = "checkpoint.key"
WITNESS_FILE = "witness.key"
SIGNING_PREFIX = "signing-"
ENCRYPTION_PREFIX = "encryption-"
KEY_BYTES = 32
ENCRYPTED_KEY = "comity-encrypted-key-v1-argon2id"
"""First word of a passphrase-encrypted key file; then ops limit, memory limit, and base64 of
salt, nonce and ciphertext."""


def key_id(public_key: bytes) -> KeyId:
    """Lowercase hex of the first 16 bytes of SHA-256 over the raw public key."""
    return KeyId(hashlib.sha256(public_key).digest()[:16].hex())


def encode_public_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode_public_key(text: str, *, field: str) -> bytes:
    """Decode a base64 public key.

    Raises:
        ConfigError: not base64, or not exactly 32 bytes.
    """
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError(f"{field} is not valid base64") from e
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{field} must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True, kw_only=True)
class AgencyKeys:
    """This node's private message keys. Never printed: the repr shows key ids only."""

    signing: SigningKey
    encryption: PrivateKey
    checkpoint: SigningKey
    witness: SigningKey
    other_signing: tuple[SigningKey, ...] = ()
    """Signing keys held besides ``signing``: the key before a rotation, or the next one."""
    other_encryption: tuple[PrivateKey, ...] = ()
    """Encryption keys held besides ``encryption``, likewise."""

    def __repr__(self) -> str:
        return f"AgencyKeys(signing={self.signing_key_id}, encryption={self.encryption_key_id})"

    @property
    def checkpoint_public(self) -> bytes:
        return bytes(self.checkpoint.verify_key)

    @property
    def witness_public(self) -> bytes:
        return bytes(self.witness.verify_key)

    @property
    def signing_public(self) -> bytes:
        return bytes(self.signing.verify_key)

    @property
    def encryption_public(self) -> bytes:
        return bytes(self.encryption.public_key)

    @property
    def signing_key_id(self) -> KeyId:
        return key_id(self.signing_public)

    @property
    def encryption_key_id(self) -> KeyId:
        return key_id(self.encryption_public)

    def signing_keys(self) -> dict[KeyId, SigningKey]:
        """Every signing key this node holds, by key id."""
        held = (self.signing, *self.other_signing)
        return {key_id(bytes(k.verify_key)): k for k in held}

    def using_signing(self, kid: KeyId) -> AgencyKeys:
        """These keys with ``kid`` (one of :meth:`signing_keys`) as the signing key."""
        held = self.signing_keys()
        others = tuple(k for i, k in held.items() if i != kid)
        return replace(self, signing=held[kid], other_signing=others)

    def encryption_keys(self) -> dict[KeyId, PrivateKey]:
        """Every encryption key this node holds, by key id."""
        held = (self.encryption, *self.other_encryption)
        return {key_id(bytes(k.public_key)): k for k in held}

    def using_encryption(self, kid: KeyId) -> AgencyKeys:
        """These keys with ``kid`` (one of :meth:`encryption_keys`) as the encryption key."""
        held = self.encryption_keys()
        others = tuple(k for i, k in held.items() if i != kid)
        return replace(self, encryption=held[kid], other_encryption=others)

    @classmethod
    def generate(cls) -> AgencyKeys:
        return cls(
            signing=SigningKey.generate(),
            encryption=PrivateKey.generate(),
            checkpoint=SigningKey.generate(),
            witness=SigningKey.generate(),
        )

    def save(self, directory: Path) -> None:
        """Write both keys (base64, one line each) as files only the owner can read.

        Raises:
            ConfigError: a key file exists already or cannot be written.
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(directory / SIGNING_FILE, _encode_secret(bytes(self.signing)))
        write_private_file(directory / ENCRYPTION_FILE, _encode_secret(bytes(self.encryption)))
        write_private_file(directory / CHECKPOINT_FILE, _encode_secret(bytes(self.checkpoint)))
        write_private_file(directory / WITNESS_FILE, _encode_secret(bytes(self.witness)))

    @classmethod
    def load(cls, directory: Path) -> AgencyKeys:
        """Read the keys written by :meth:`save`.

        Raises:
            ConfigError: a file is missing, readable by others, or not a 32-byte key.
        """
        return cls(
            signing=SigningKey(_read_secret(directory / SIGNING_FILE)),
            encryption=PrivateKey(_read_secret(directory / ENCRYPTION_FILE)),
            checkpoint=SigningKey(_read_secret(directory / CHECKPOINT_FILE)),
            witness=SigningKey(_read_secret(directory / WITNESS_FILE)),
            other_signing=tuple(
                SigningKey(_read_secret(path))
                for path in sorted(directory.glob(f"{SIGNING_PREFIX}*.key"))
            ),
            other_encryption=tuple(
                PrivateKey(_read_secret(path))
                for path in sorted(directory.glob(f"{ENCRYPTION_PREFIX}*.key"))
            ),
        )


ROTATABLE = ("signing", "encryption")


def rotate_key(directory: Path, purpose: str) -> bytes:
    """Keep the current key of ``purpose`` (signing or encryption) as
    ``<purpose>-<key id>.key`` and make a new ``<purpose>.key``.

    The node keeps using the old key until the directory lists the new one, and keeps the old
    one to open what was sealed to it; returns the new public key for the secretariat.

    Raises:
        ConfigError: an unknown purpose, or the key directory does not hold readable keys.
    """
    if purpose not in ROTATABLE:
        raise ConfigError(f"only {' and '.join(ROTATABLE)} keys can be rotated on a node")
    path = directory / f"{purpose}.key"
    current = _read_secret(path)
    old_public, new_secret, new_public = (
        (bytes(SigningKey(current).verify_key), *_new_signing())
        if purpose == "signing"
        else (bytes(PrivateKey(current).public_key), *_new_encryption())
    )
    write_private_file(directory / f"{purpose}-{key_id(old_public)}.key", _encode_secret(current))
    replace_private_file(path, _encode_secret(new_secret))
    return new_public


RETIRED_DIR = "retired"


def retire_key(directory: Path, kid: KeyId) -> Path:
    """Stop loading an old signing or encryption key: move ``<purpose>-<kid>.key`` into
    ``retired/``, where :meth:`AgencyKeys.load` does not look. Returns its new path.

    Raises:
        ConfigError: ``kid`` is a current key, or no old key of that id is held.
    """
    for purpose in ROTATABLE:
        current = _read_secret(directory / f"{purpose}.key")
        public = (
            bytes(SigningKey(current).verify_key)
            if purpose == "signing"
            else bytes(PrivateKey(current).public_key)
        )
        if key_id(public) == kid:
            raise ConfigError(f"key {kid} is the current {purpose} key; it cannot be retired")
    held = [directory / f"{purpose}-{kid}.key" for purpose in ROTATABLE]
    found = [path for path in held if path.exists()]
    if not found:
        raise ConfigError(f"no old signing or encryption key {kid} in {directory}")
    retired = directory / RETIRED_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    target = retired / found[0].name
    found[0].replace(target)
    return target


def _new_signing() -> tuple[bytes, bytes]:
    key = SigningKey.generate()
    return bytes(key), bytes(key.verify_key)


def _new_encryption() -> tuple[bytes, bytes]:
    key = PrivateKey.generate()
    return bytes(key), bytes(key.public_key)


def _encode_secret(raw: bytes) -> bytes:
    return base64.b64encode(raw) + b"\n"


def _read_secret(path: Path) -> bytes:
    return _decode_secret(_read_private_text(path), path)


def _read_private_text(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as e:
        raise ConfigError(f"key file {path} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read key file {path}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"key file {path} is accessible by other users; chmod 600 it")
    return text


def _decode_secret(text: str, path: Path) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError(f"key file {path} is not base64") from e
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"key file {path} does not hold a {KEY_BYTES}-byte key")
    return raw


def save_signing_key(path: Path, key: SigningKey, *, passphrase: bytes | None = None) -> None:
    """Write one Ed25519 private key (base64, one line) readable by its owner only; with a
    ``passphrase``, encrypted under a key derived from it (Argon2id, then XSalsa20-Poly1305).

    Raises:
        ConfigError: the file exists already or cannot be written, or the passphrase is empty.
    """
    if passphrase is None:
        write_private_file(path, _encode_secret(bytes(key)))
        return
    if not passphrase:
        raise ConfigError("the passphrase must not be empty")
    salt = nacl.utils.random(argon2id.SALTBYTES)
    ops, mem = argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE
    sealed = SecretBox(_derive(passphrase, salt, ops, mem)).encrypt(bytes(key))
    line = f"{ENCRYPTED_KEY} {ops} {mem} {base64.b64encode(salt + sealed).decode('ascii')}\n"
    write_private_file(path, line.encode("ascii"))


def load_signing_key(path: Path, *, passphrase: Callable[[], bytes] | None = None) -> SigningKey:
    """Read a key written by :func:`save_signing_key`; ``passphrase`` is asked for only when
    the file is encrypted.

    Raises:
        ConfigError: missing, readable by others, not a 32-byte key, or encrypted and the
            passphrase is missing or wrong.
    """
    text = _read_private_text(path)
    if not text.startswith(ENCRYPTED_KEY):
        return SigningKey(_decode_secret(text, path))
    if passphrase is None:
        raise ConfigError(f"key file {path} is encrypted; a passphrase is needed")
    return SigningKey(_decrypt_secret(text, passphrase(), path))


def is_encrypted_key(path: Path) -> bool:
    """Whether ``path`` holds a passphrase-encrypted key (checking the file's mode too)."""
    return _read_private_text(path).startswith(ENCRYPTED_KEY)


def _decrypt_secret(text: str, passphrase: bytes, path: Path) -> bytes:
    try:
        _, ops, mem, blob = text.split()
        data = base64.b64decode(blob, validate=True)
        salt, sealed = data[: argon2id.SALTBYTES], data[argon2id.SALTBYTES :]
        raw = SecretBox(_derive(passphrase, salt, int(ops), int(mem))).decrypt(sealed)
    except CryptoError as e:
        raise ConfigError(f"key file {path}: wrong passphrase") from e
    except (ValueError, binascii.Error) as e:
        raise ConfigError(f"key file {path} is not a readable encrypted key") from e
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"key file {path} does not hold a {KEY_BYTES}-byte key")
    return raw


def _derive(passphrase: bytes, salt: bytes, ops: int, mem: int) -> bytes:
    # Limits are read from the file, within bounds that keep a hostile file from asking for
    # gigabytes: a file written with MODERATE limits never needs more.
    if not (argon2id.OPSLIMIT_MIN <= ops <= argon2id.OPSLIMIT_SENSITIVE) or not (
        argon2id.MEMLIMIT_MIN <= mem <= argon2id.MEMLIMIT_SENSITIVE
    ):
        raise ValueError("key derivation limits out of range")
    return argon2id.kdf(SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem)
