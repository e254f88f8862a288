# SPDX-License-Identifier: Apache-2.0
"""Private set intersection cardinality: how many indicators two agencies share, and no more.

Diffie-Hellman PSI-CA (De Cristofaro, Gasti and Tsudik, 2012) over the prime-order subgroup of
edwards25519, with libsodium's primitives (through PyNaCl): each item is hashed to a point
(Elligator 2, ``crypto_core_ed25519_from_uniform``) and raised to a secret scalar.

1. The initiator sends its points raised to ``a``, sorted.
2. The responder raises those to ``b`` and returns them sorted again, so their order says
   nothing about which item is which, together with its own points raised to ``b``.
3. The initiator raises the responder's points to ``a`` and counts the values both lists hold.

The initiator learns the count and the responder's set size; the responder learns the
initiator's set size. Neither learns which items matched. Repeated queries with chosen sets
could still test single values of a small domain (a phone number), so the responder limits
how often each peer may ask. openmined-psi, the library the reference points to, pins a
protobuf major version older than this project's, so the protocol is composed here from
libsodium's point operations instead. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

from nacl import bindings

from node.errors import ComityError, ErrorKind

DOMAIN = b"comity/overlap/v1\x00"
POINT_BYTES = 32
MAX_ITEMS = 200_000


class OverlapError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_overlap"


def item_bytes(kind: str, canonical_value: str) -> bytes:
    return kind.encode() + b"\x00" + canonical_value.encode()


def new_secret() -> bytes:
    """A uniformly random non-zero scalar."""
    while True:
        scalar: bytes = bindings.crypto_core_ed25519_scalar_reduce(os.urandom(64))
        if any(scalar):
            return scalar


def _point(item: bytes) -> bytes:
    uniform = hashlib.sha512(DOMAIN + item).digest()[:POINT_BYTES]
    point: bytes = bindings.crypto_core_ed25519_from_uniform(uniform)
    return point


def blind_items(items: Iterable[bytes], secret: bytes) -> list[bytes]:
    """Each item's point raised to ``secret``, sorted."""
    return sorted(bindings.crypto_scalarmult_ed25519_noclamp(secret, _point(i)) for i in items)


def reblind(points: Sequence[bytes], secret: bytes) -> list[bytes]:
    """The other side's points raised to ``secret``, sorted.

    Raises:
        OverlapError: too many points, or one that is not a valid point of the subgroup.
    """
    if len(points) > MAX_ITEMS:
        raise OverlapError(f"an overlap check takes at most {MAX_ITEMS} items a side")
    out = []
    for n, point in enumerate(points):
        if len(point) != POINT_BYTES or not bindings.crypto_core_ed25519_is_valid_point(point):
            raise OverlapError(f"point {n} is not a valid edwards25519 point")
        out.append(bindings.crypto_scalarmult_ed25519_noclamp(secret, point))
    return sorted(out)


def shared_count(mine: Iterable[bytes], theirs: Iterable[bytes]) -> int:
    return len(set(mine) & set(theirs))
