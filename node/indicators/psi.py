# SPDX-License-Identifier: Apache-2.0
"""Private set intersection cardinality: how many indicators two agencies share, and no more.

Diffie-Hellman PSI-CA (De Cristofaro, Gasti and Tsudik, 2012) on Curve25519, with libsodium's
primitives (through PyNaCl): each item is hashed to a point of the prime-order subgroup
(Elligator 2, ``crypto_core_ed25519_from_uniform``), taken to its Montgomery u-coordinate, and
raised to a secret scalar with X25519, three times faster than Edwards arithmetic. X25519 keeps
only u, so a point and its negative blind alike; two items hashing to opposite points is as
unlikely as a hash collision.

1. The initiator sends its points raised to ``a``, sorted.
2. The responder raises those to ``b`` and returns them sorted again, so their order says
   nothing about which item is which, together with its own points raised to ``b``.
3. The initiator raises the responder's points to ``a`` and counts the values both lists hold.

The initiator learns the count and the responder's set size; the responder learns the
initiator's set size. Neither learns which items matched.

Reveal mode (node/services/overlap_reveal.py, only after a signed request and the responder's
consent) differs in one step: the responder returns the initiator's points blinded again in the
order they came (``reblind_each``), so the initiator can tell which of its own items are in the
intersection. The responder still learns only the initiator's set size.

Repeated queries with chosen sets could still test single values of a small domain (a phone
number), so the responder limits how often each peer may ask. openmined-psi, the library the
reference points to, pins a protobuf major version older than this project's, so the protocol
is composed here from libsodium's point operations instead. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

from nacl import bindings
from nacl.exceptions import CryptoError

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
    """A random X25519 scalar (X25519 clamps it: a multiple of the cofactor, never zero)."""
    return os.urandom(32)


def _point(item: bytes) -> bytes:
    uniform = hashlib.sha512(DOMAIN + item).digest()[:POINT_BYTES]
    edwards = bindings.crypto_core_ed25519_from_uniform(uniform)
    u: bytes = bindings.crypto_sign_ed25519_pk_to_curve25519(edwards)
    return u


def blind_items(items: Iterable[bytes], secret: bytes) -> list[bytes]:
    """Each item's point raised to ``secret``, sorted."""
    return sorted(blind_each(items, secret))


def blind_each(items: Iterable[bytes], secret: bytes) -> list[bytes]:
    """Each item's point raised to ``secret``, in the items' order (reveal mode)."""
    return [bindings.crypto_scalarmult(secret, _point(i)) for i in items]


def reblind(points: Sequence[bytes], secret: bytes) -> list[bytes]:
    """The other side's points raised to ``secret``, sorted.

    Raises:
        OverlapError: too many points, or one that is not a valid point of the subgroup.
    """
    return sorted(reblind_each(points, secret))


def reblind_each(points: Sequence[bytes], secret: bytes) -> list[bytes]:
    """The other side's points raised to ``secret``, in the order they came: only for a
    consented reveal, where the order is what tells the initiator which items matched.

    Raises:
        OverlapError: too many points, or one that is not a valid point of the subgroup.
    """
    if len(points) > MAX_ITEMS:
        raise OverlapError(f"an overlap check takes at most {MAX_ITEMS} items a side")
    out = []
    for n, point in enumerate(points):
        if len(point) != POINT_BYTES:
            raise OverlapError(f"point {n} is not a valid Curve25519 point")
        try:
            # libsodium refuses a result of zero: the point had small order.
            out.append(bindings.crypto_scalarmult(secret, point))
        except CryptoError as e:
            raise OverlapError(f"point {n} is not a valid Curve25519 point") from e
    return out


def shared_count(mine: Iterable[bytes], theirs: Iterable[bytes]) -> int:
    return len(set(mine) & set(theirs))
