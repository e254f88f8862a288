# SPDX-License-Identifier: Apache-2.0
"""Minimization against legal-basis profiles, and the profiles file itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from node.errors import FormValidationError
from node.forms.minimize import REMOVED, NotMinimalError, minimize
from node.forms.profiles import profiles
from node.forms.registry import form_types, get_form_type, schemas_dir
from node.forms.validate import validate_form
from node.model.lifecycle import REFUSAL_GROUNDS


def example(kind: str) -> dict[str, Any]:
    path = schemas_dir() / "examples" / f"{kind}.example.json"
    value: dict[str, Any] = json.loads(path.read_text())
    return value


def canonical(kind: str, form: dict[str, Any]) -> bytes:
    return validate_form(get_form_type(kind), json.dumps(form).encode())


Change = Callable[[dict[str, Any]], None]


def many_accounts(count: int) -> Change:
    def change(form: dict[str, Any]) -> None:
        form["data_requested"]["indicators"] = [
            {"type": "platform_account", "value": f"chirper:@user{i}"} for i in range(count)
        ]

    return change


def traffic_order_with_accounts(form: dict[str, Any], count: int) -> None:
    form["legal_basis"] = "sap-art8-traffic"
    form["data_requested"]["data_categories"] = ["traffic"]
    many_accounts(count)(form)


def text(path: tuple[str, ...], value: str) -> Change:
    def change(form: dict[str, Any]) -> None:
        target = form
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


REFUSED: list[tuple[str, str, Change, str]] = [
    (
        "content data under an order for traffic data",
        "production",
        lambda f: f.update(legal_basis="sap-art8-traffic"),
        "$.data_requested.data_categories[0]: this category is beyond what sap-art8-traffic",
    ),
    (
        "more identifiers than the basis allows",
        "production",
        lambda f: traffic_order_with_accounts(f, 51),
        "$.data_requested.indicators: 51 identifiers; sap-art8-traffic allows at most 50",
    ),
    (
        "content under the EU Regulation ordered by a prosecutor",
        "production",
        lambda f: f["issuing_authority"].update(type="prosecutor"),
        "$.issuing_authority.type: content, traffic data under eu-e-evidence-production-order",
    ),
    (
        "an e-mail address in the facts",
        "preservation",
        text(("offence", "summary_of_facts"), "The suspect wrote from orbit.watch@mail.example."),
        "$.offence.summary_of_facts: contains an e-mail address",
    ),
    (
        "a telephone number in the necessity",
        "preservation",
        text(("necessity",), "The victim was called from +372 5555 0101 repeatedly at night."),
        "$.necessity: contains a telephone number",
    ),
    (
        "a handle in the conduct",
        "subscriber-information",
        text(("conduct", "description"), "Threats posted by @orbit_watch_77 against V-2026-0142."),
        "$.conduct.description: contains an account handle",
    ),
    (
        "a web address in the alert",
        "campaign-alert",
        text(("alert", "summary"), "The list is at https://paste.example.org/p/x for everyone."),
        "$.alert.summary: contains a web address",
    ),
    (
        "an IP address in the emergency",
        "emergency-disclosure",
        text(("emergency", "justification"), "The account logged in from 192.0.2.44 an hour ago."),
        "$.emergency.justification: contains an IP address",
    ),
]


@pytest.mark.parametrize(
    ("name", "kind", "change", "problem"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_refused_as_not_minimal(name: str, kind: str, change: Change, problem: str) -> None:
    del name
    form = example(kind)
    change(form)
    with pytest.raises(NotMinimalError) as caught:
        minimize(kind, canonical(kind, form))
    assert problem in caught.value.message
    assert caught.value.code == "not_minimal"


def test_refusals_never_quote_the_value() -> None:
    form = example("preservation")
    text(("necessity",), "Call +372 5555 0101 or write to orbit.watch@mail.example now.")(form)
    with pytest.raises(NotMinimalError) as caught:
        minimize("preservation", canonical("preservation", form))
    assert "5555" not in caught.value.message
    assert "orbit.watch" not in caught.value.message


def test_free_text_identifiers_can_be_stripped() -> None:
    form = example("preservation")
    text(("necessity",), "Call +372 5555 0101 or write to orbit.watch@mail.example today.")(form)
    result = minimize("preservation", canonical("preservation", form), strip=True)
    stripped = json.loads(result.form_json)["necessity"]
    assert stripped == f"Call {REMOVED} or write to {REMOVED} today."
    assert result.notes == (
        "$.necessity: an e-mail address removed",
        "$.necessity: a telephone number removed",
    )


@pytest.mark.parametrize(
    "harmless",
    [
        "Penal Code § 157-3 and § 120; victim V-2026-0142 since 2026-03-02 at 21:30.",
        "About twenty accounts posted within the same 5 minutes, 3 times a day.",
    ],
)
def test_ordinary_text_passes(harmless: str) -> None:
    form = example("preservation")
    text(("necessity",), harmless)(form)
    minimize("preservation", canonical("preservation", form))


def test_a_basis_that_does_not_cover_the_type_is_refused() -> None:
    form = example("subscriber-information")
    with pytest.raises(FormValidationError, match="does not cover a production request"):
        minimize("production", json.dumps(form).encode())


def test_profiles_cover_every_type_and_name_known_grounds() -> None:
    covered = {t for p in profiles() for t in p.request_types}
    assert covered == {t.name for t in form_types()}
    for profile in profiles():
        assert profile.refusal_grounds <= set(REFUSAL_GROUNDS), profile.code
        assert "protected_expression" in profile.refusal_grounds or not profile.data_categories


def test_each_schema_offers_exactly_the_bases_that_cover_it() -> None:
    for form_type in form_types():
        schema = json.loads(form_type.schema_path.read_text())
        offered = set(schema["properties"]["legal_basis"]["enum"])
        covering = {p.code for p in profiles() if form_type.name in p.request_types}
        assert offered == covering, form_type.name
