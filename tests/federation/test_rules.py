# SPDX-License-Identifier: Apache-2.0
"""The trust rules, table-driven in the style of python-tuf's root-update tests.

Each row: which root keys the trusted version has and how many must sign, what the candidate
changes, which keys sign it, and the rule it must break (None: accepted).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from nacl.signing import SigningKey

from node.crypto.keys import key_id
from node.errors import DirectoryError
from node.federation import ceremony
from node.federation.document import SignedDirectory
from node.federation.rules import count_signatures, verify_initial, verify_update
from tests.federation.build import NOW_MS, card, root_keys

DAY = ceremony.DAY_MS
ROOTS = root_keys(5)  # 0-2: the trusted roots; 3-4: roots a rotation brings in


def trusted() -> SignedDirectory:
    """Version 3, roots 0-2, threshold 2."""
    first = ceremony.signed_directory(
        [card("aa-unit")], root_keys=ROOTS[:3], threshold=2, now_ms=NOW_MS
    )
    signed = dict(first.signed)
    signed["version"] = 3
    return signed_by(ceremony._build(signed, {}), (0, 1, 2))


def signed_by(document: SignedDirectory, signers: tuple[int, ...]) -> SignedDirectory:
    for i in signers:
        document = ceremony.sign(document, ROOTS[i])
    return document


@dataclass(frozen=True)
class Case:
    name: str
    signers: tuple[int, ...]
    rule: str | None
    new_roots: tuple[int, ...] | None = None
    new_threshold: int = 2
    version_step: int = 1
    valid_days: int = 365
    checked_days_later: int = 0


CASES = [
    Case("threshold met", (0, 1), None),
    Case("all trusted roots", (0, 1, 2), None),
    Case("one of two required", (0,), "threshold"),
    Case("no signatures", (), "threshold"),
    Case("signed by unknown keys only", (3, 4), "threshold"),
    Case("one trusted, one unknown", (0, 3), "threshold"),
    Case("same version again", (0, 1), "rollback", version_step=0),
    Case("older version", (0, 1), "rollback", version_step=-1),
    Case("skipping versions is allowed", (0, 1), None, version_step=5),
    Case("already expired", (0, 1), "expired", valid_days=1, checked_days_later=2),
    # Root rotation: the old threshold AND the new threshold must sign.
    Case("rotation signed by old and new", (0, 1, 3, 4), None, new_roots=(2, 3, 4)),
    Case("rotation: only old roots", (0, 1), "new-root-threshold", new_roots=(2, 3, 4)),
    Case("rotation: only new roots", (3, 4), "threshold", new_roots=(3, 4)),
    Case("rotation: new threshold not met", (0, 1, 3), "new-root-threshold", new_roots=(3, 4)),
    Case("rotation: overlap keys count for both", (1, 2), None, new_roots=(1, 2, 3)),
    Case(
        "raise threshold to 3", (0, 1), "new-root-threshold", new_threshold=3, new_roots=(0, 1, 2)
    ),
    Case("raise threshold, three sign", (0, 1, 2), None, new_threshold=3, new_roots=(0, 1, 2)),
]


def candidate_for(case: Case, base: SignedDirectory) -> SignedDirectory:
    draft = ceremony.renew(base, now_ms=NOW_MS, valid_days=case.valid_days)
    if case.new_roots is not None:
        draft = ceremony.set_roots(
            draft,
            root_keys=[bytes(ROOTS[i].verify_key) for i in case.new_roots],
            threshold=case.new_threshold,
            now_ms=NOW_MS,
            valid_days=case.valid_days,
        )
    signed = dict(draft.signed)
    signed["version"] = base.version + case.version_step
    return signed_by(ceremony._build(signed, {}), case.signers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_update_rules(case: Case) -> None:
    base = trusted()
    candidate = candidate_for(case, base)
    now = NOW_MS + case.checked_days_later * DAY
    if case.rule is None:
        verify_update(base, candidate, now_ms=now)
        return
    with pytest.raises(DirectoryError) as caught:
        verify_update(base, candidate, now_ms=now)
    assert caught.value.rule == case.rule
    assert caught.value.rule in caught.value.message


def test_threshold_message_names_signed_and_missing_keys() -> None:
    base = trusted()
    candidate = candidate_for(Case("", (0,), "threshold"), base)
    with pytest.raises(DirectoryError) as caught:
        verify_update(base, candidate, now_ms=NOW_MS)
    message = caught.value.message
    signed, missing = ROOTS[0], [ROOTS[1], ROOTS[2]]
    assert "1 of the 2 required" in message
    assert _kid(signed) in message.split("not signed")[0]
    assert all(_kid(k) in message.split("not signed")[1] for k in missing)


def _kid(key: SigningKey) -> str:
    return key_id(bytes(key.verify_key))


def test_a_bad_signature_counts_for_nothing() -> None:
    base = trusted()
    candidate = candidate_for(Case("", (0, 1), None), base)
    forged = dict(candidate.signatures)
    first = next(iter(forged))
    forged[first] = bytes(64)
    tampered = SignedDirectory(body=candidate.body, signed=candidate.signed, signatures=forged)
    with pytest.raises(DirectoryError) as caught:
        verify_update(base, tampered, now_ms=NOW_MS)
    assert caught.value.rule == "threshold"


def test_changing_signed_content_breaks_every_signature() -> None:
    base = trusted()
    candidate = candidate_for(Case("", (0, 1, 2), None), base)
    signed = dict(candidate.signed)
    signed["expires"] = "2099-01-01T00:00:00Z"
    tampered = SignedDirectory(body=candidate.body, signed=signed, signatures=candidate.signatures)
    assert count_signatures(tampered, base.body.roots).valid == frozenset()


INITIAL = [
    ("threshold of own roots", 2, (0, 1), 365, None),
    ("one of two", 2, (0,), 365, "new-root-threshold"),
    ("unsigned", 1, (), 365, "new-root-threshold"),
    ("expired", 2, (0, 1), -1, "expired"),
]


@pytest.mark.parametrize(
    ("name", "threshold", "signers", "days", "rule"), INITIAL, ids=[c[0] for c in INITIAL]
)
def test_initial_rules(
    name: str, threshold: int, signers: tuple[int, ...], days: int, rule: str | None
) -> None:
    del name
    draft = ceremony.new_directory(
        root_keys=[bytes(k.verify_key) for k in ROOTS[:3]],
        threshold=threshold,
        now_ms=NOW_MS,
        valid_days=days if days > 0 else 1,
    )
    now = NOW_MS if days > 0 else NOW_MS + 2 * DAY
    document = signed_by(draft, signers)
    if rule is None:
        verify_initial(document, now_ms=now)
        return
    with pytest.raises(DirectoryError) as caught:
        verify_initial(document, now_ms=now)
    assert caught.value.rule == rule


def test_an_expired_intermediate_version_is_walked_through() -> None:
    base = trusted()
    expired = candidate_for(Case("", (0, 1), None, valid_days=1), base)
    later = NOW_MS + 2 * DAY
    with pytest.raises(DirectoryError):
        verify_update(base, expired, now_ms=later)
    verify_update(base, expired, now_ms=later, intermediate=True)
