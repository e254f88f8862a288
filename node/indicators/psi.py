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

What a malicious initiator can still learn. Nothing here makes the initiator prove that one
secret blinded all its points, and nothing can in this protocol: the responder never sees the
hashed points the initiator raised, and any list of points is ``a`` times *some* list, so a
proof of "one exponent" (a Chaum-Pedersen DLEQ, as RFC 9497 uses for its server) would hold
for a cheating list as well as an honest one; a proof worth having would be of knowledge of
the hash preimages, a general zero-knowledge proof of SHA-512 and Elligator 2. An initiator
that blinds each point with its own secret can raise the responder's points by each of them
and learn, for every point it sent, whether the responder holds that value (a chosen phone
number, say). The responder therefore refuses repeated points (``check_distinct``), charges
every point it answers to the peer's daily item budget, and logs every answered check with a
commitment to the points (``input_digest``), their number and the initiator's stated reason
(``check_reason``): the leakage is bounded by the budget and accountable, not prevented
(README, "Overlap checks: what a malicious asker can learn"). openmined-psi, the library the
reference points to, pins a protobuf major version older than this project's, so the protocol
is composed here from libsodium's point operations instead. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence

from nacl import bindings
from nacl.exceptions import CryptoError

from node.errors import ComityError, ErrorKind

DOMAIN = b"comity/overlap/v1\x00"
INPUT_DOMAIN = b"comity/overlap-input/v1\x00"
POINT_BYTES = 32
MAX_ITEMS = 200_000
MAX_REASON_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_P = 2**255 - 19
_Y_MASK = (1 << 255) - 1
"""An Edwards point's encoding is y with the sign of x in its top bit."""


class OverlapError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_overlap"


def item_bytes(kind: str, canonical_value: str) -> bytes:
    return kind.encode() + b"\x00" + canonical_value.encode()


def new_secret() -> bytes:
    """A random X25519 scalar (X25519 clamps it: a multiple of the cofactor, never zero)."""
    return os.urandom(32)


def hash_to_points(items: Iterable[bytes]) -> list[bytes]:
    """Each item's point (its Montgomery u-coordinate), in the items' order.

    Public and deterministic: anyone can compute it from the item, so keeping it between
    checks (node/indicators/psi_workers.py) reveals nothing the item does not.

    Raises:
        OverlapError: an item hashes to the identity (as likely as a SHA-512 preimage).
    """
    edwards = [bindings.crypto_core_ed25519_from_uniform(_uniform(item)) for item in items]
    return _montgomery_u(edwards)


def blind_points(points: Iterable[bytes], secret: bytes) -> list[bytes]:
    """This agency's own points (from ``hash_to_points``) raised to ``secret``, in order."""
    return [bindings.crypto_scalarmult(secret, point) for point in points]


def blind_items(items: Iterable[bytes], secret: bytes) -> list[bytes]:
    """Each item's point raised to ``secret``, sorted."""
    return sorted(blind_each(items, secret))


def blind_each(items: Iterable[bytes], secret: bytes) -> list[bytes]:
    """Each item's point raised to ``secret``, in the items' order (reveal mode)."""
    return blind_points(hash_to_points(items), secret)


def reblind(points: Sequence[bytes], secret: bytes) -> list[bytes]:
    """The other side's points raised to ``secret``, sorted.

    Raises:
        OverlapError: too many points, or one that is not a valid point of the subgroup.
    """
    return sorted(reblind_each(points, secret))


def reblind_each(points: Sequence[bytes], secret: bytes, *, first: int = 0) -> list[bytes]:
    """The other side's points raised to ``secret``, in the order they came: only for a
    consented reveal, where the order is what tells the initiator which items matched.
    ``first`` is the position of ``points[0]`` in the whole message, for the error text when
    the points come in chunks.

    Raises:
        OverlapError: too many points, or one that is not a valid point of the subgroup.
    """
    check_size(points)
    out = []
    for n, point in enumerate(points, start=first):
        if len(point) != POINT_BYTES:
            raise OverlapError(f"point {n} is not a valid Curve25519 point")
        try:
            # libsodium refuses a result of zero: the point had small order.
            out.append(bindings.crypto_scalarmult(secret, point))
        except CryptoError as e:
            raise OverlapError(f"point {n} is not a valid Curve25519 point") from e
    return out


def check_size(points: Sequence[bytes]) -> None:
    """Raises: OverlapError: more points than an overlap check takes."""
    if len(points) > MAX_ITEMS:
        raise OverlapError(f"an overlap check takes at most {MAX_ITEMS} items a side")


def check_distinct(points: Sequence[bytes]) -> None:
    """Every point in its one canonical encoding (u below p: X25519 ignores the top bit and
    reduces u, so one point has more than one spelling), and no point twice: an honest
    initiator's items are a set, so its points are distinct.

    Raises:
        OverlapError: a point that is not canonical, or that repeats an earlier one.
    """
    seen: set[bytes] = set()
    for n, point in enumerate(points):
        if int.from_bytes(point, "little") >= _P:
            raise OverlapError(f"point {n} is not a canonical Curve25519 point")
        if point in seen:
            raise OverlapError(f"point {n} repeats an earlier point")
        seen.add(point)


def input_digest(points: Iterable[bytes]) -> bytes:
    """SHA-256 of the initiator's points in the order they came: what the responder's audit
    leaf commits to, so the check's input can later be matched against the initiator's own
    record of it."""
    digest = hashlib.sha256(INPUT_DOMAIN)
    for point in points:
        digest.update(point)
    return digest.digest()


def check_reason(reason: str) -> str:
    """The initiator's stated reason for a check, stripped.

    Raises:
        OverlapError: empty, longer than ``MAX_REASON_CHARS``, or with control characters.
    """
    reason = reason.strip()
    if not reason:
        raise OverlapError("an overlap check states its reason")
    if len(reason) > MAX_REASON_CHARS:
        raise OverlapError(f"the reason is at most {MAX_REASON_CHARS} characters")
    if _CONTROL.search(reason):
        raise OverlapError("the reason must not hold control characters")
    return reason


def shared_count(mine: Iterable[bytes], theirs: Iterable[bytes]) -> int:
    return len(set(mine) & set(theirs))


def _uniform(item: bytes) -> bytes:
    return hashlib.sha512(DOMAIN + item).digest()[:POINT_BYTES]


def _montgomery_u(edwards: Sequence[bytes]) -> list[bytes]:
    """u = (1 + y) / (1 - y) of each Edwards point, with one field inversion for the batch.

    The same map as libsodium's ``crypto_sign_ed25519_pk_to_curve25519``, which first checks
    that the point lies in the prime-order subgroup: a scalar multiplication costing more than
    the blinding. Elligator 2 output has its cofactor cleared, so it always does, and the check
    only costs time. Inverting every ``1 - y`` at once (Montgomery's trick: three
    multiplications a point and one inversion) replaces an inversion a point.
    """
    ys = [int.from_bytes(point, "little") & _Y_MASK for point in edwards]
    denominators = [(1 - y) % _P for y in ys]
    if 0 in denominators:
        raise OverlapError("an item hashes to the identity point")
    inverses = _invert_all(denominators)
    return [
        ((1 + y) * inverse % _P).to_bytes(POINT_BYTES, "little")
        for y, inverse in zip(ys, inverses, strict=True)
    ]


def _invert_all(values: Sequence[int]) -> list[int]:
    """The inverse of each value modulo p (none zero), with a single modular inversion."""
    prefixes = []
    product = 1
    for value in values:
        prefixes.append(product)
        product = product * value % _P
    inverse = pow(product, -1, _P) if values else 1
    inverses = [0] * len(values)
    for n in range(len(values) - 1, -1, -1):
        inverses[n] = prefixes[n] * inverse % _P
        inverse = inverse * values[n] % _P
    return inverses
