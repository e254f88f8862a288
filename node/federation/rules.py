# SPDX-License-Identifier: Apache-2.0
"""The trust rules a node applies to a directory before it believes it.

Modelled on TUF's root metadata: a directory is trusted when a threshold of the *trusted*
root keys signed it and a threshold of its *own* root keys signed it (so a new root key set
is accepted only with the old and the new holders' consent), its version is higher than the
trusted one (no rollback), and it has not expired (no freeze). The first directory a node
sees is trusted like TUF's initial root: it arrives out of band, and it must still carry a
threshold of its own root signatures. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from node.errors import DirectoryError
from node.federation.document import RootKeys, SignedDirectory, format_instant
from node.ids import KeyId


@dataclass(frozen=True, kw_only=True)
class SignatureCount:
    """Which root keys of a set signed a document validly, and which did not."""

    roots: RootKeys
    valid: frozenset[KeyId]

    @property
    def met(self) -> bool:
        return len(self.valid) >= self.roots.threshold

    @property
    def missing(self) -> list[KeyId]:
        return sorted(k for k in self.roots.keys if k not in self.valid)

    def describe(self) -> str:
        return (
            f"{len(self.valid)} of the {self.roots.threshold} required signature(s) "
            f"(signed: {', '.join(sorted(self.valid)) or 'none'}; "
            f"not signed: {', '.join(self.missing) or 'none'})"
        )


def count_signatures(document: SignedDirectory, roots: RootKeys) -> SignatureCount:
    """The root keys of ``roots`` whose signature on ``document`` verifies.

    Signatures by keys outside ``roots`` are ignored; a bad signature counts for nothing.
    """
    message = document.signed_bytes()
    valid: set[KeyId] = set()
    for kid, signature in document.signatures.items():
        public = roots.keys.get(kid)
        if public is None:
            continue
        try:
            VerifyKey(public).verify(message, signature)
        except (BadSignatureError, ValueError):
            continue
        valid.add(kid)
    return SignatureCount(roots=roots, valid=frozenset(valid))


def check_self_signed(document: SignedDirectory) -> None:
    """A threshold of the document's own root keys signed it.

    Raises:
        DirectoryError: rule ``new-root-threshold``.
    """
    count = count_signatures(document, document.body.roots)
    if not count.met:
        raise DirectoryError(
            "new-root-threshold",
            f"version {document.version} has {count.describe()} of its own root keys",
        )


def check_not_expired(document: SignedDirectory, *, now_ms: int) -> None:
    """Raises DirectoryError (rule ``expired``) once ``expires`` has passed."""
    if now_ms >= document.body.expires_ms:
        raise DirectoryError(
            "expired",
            f"version {document.version} expired at {format_instant(document.body.expires_ms)}",
        )


def verify_initial(document: SignedDirectory, *, now_ms: int) -> None:
    """The rules for the first directory a node trusts (delivered out of band).

    Raises:
        DirectoryError: rule ``new-root-threshold`` or ``expired``.
    """
    check_self_signed(document)
    check_not_expired(document, now_ms=now_ms)


def verify_update(
    trusted: SignedDirectory,
    candidate: SignedDirectory,
    *,
    now_ms: int,
    intermediate: bool = False,
) -> None:
    """The rules for replacing the trusted directory with ``candidate``.

    An ``intermediate`` version (one on the way to a newer one, as TUF walks root versions)
    may have expired meanwhile: only the newest version has to be unexpired.

    Raises:
        DirectoryError: rule ``rollback`` (not a newer version), ``threshold`` (too few
            trusted root signatures), ``new-root-threshold`` (too few of its own root
            signatures) or ``expired``.
    """
    if candidate.version <= trusted.version:
        raise DirectoryError(
            "rollback",
            f"version {candidate.version} is not newer than the trusted version {trusted.version}",
        )
    count = count_signatures(candidate, trusted.body.roots)
    if not count.met:
        raise DirectoryError(
            "threshold",
            f"version {candidate.version} has {count.describe()} of the trusted "
            f"version {trusted.version}'s root keys",
        )
    check_self_signed(candidate)
    if not intermediate:
        check_not_expired(candidate, now_ms=now_ms)
