# SPDX-License-Identifier: Apache-2.0
"""The four-eyes policy as data: what `node init` writes, how comity.toml is checked, and which
actions fall under which policy key."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from node.config import init_node, load_config
from node.errors import ConfigError
from node.forms.registry import traits_of
from node.model.approvals import (
    ALL_POLICIES,
    Policy,
    filing_policy,
    message_policy,
    release_policy,
    share_policy,
)

PE = "protected_expression"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return init_node(
        directory=tmp_path / "node",
        agency_id="aa-cyber-unit",
        country="EE",
        roles=["requesting"],
        listen="127.0.0.1:7401",
    ).config_path


def _rewrite(path: Path, approvals: dict[str, Any] | None) -> None:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    document.pop("approvals", None)
    if approvals is not None:
        document["approvals"] = approvals
    path.write_text(tomli_w.dumps(document), encoding="utf-8")


def test_a_new_node_holds_every_action_for_approval(config_file: Path) -> None:
    written = tomllib.loads(config_file.read_text(encoding="utf-8"))["approvals"]
    assert written == {"required": sorted(ALL_POLICIES), "expire_days": 7}
    assert load_config(config_file).approvals_required == ALL_POLICIES
    _rewrite(config_file, None)  # a configuration from before approvals: the secure default
    assert load_config(config_file).approvals_required == ALL_POLICIES
    _rewrite(config_file, {"required": []})
    assert load_config(config_file).approvals_required == frozenset()
    _rewrite(config_file, {"required": ["court-release"], "expire_days": 2})
    config = load_config(config_file)
    assert config.approvals_required == frozenset({Policy.COURT_RELEASE})
    assert config.approvals_expire_days == 2


@pytest.mark.parametrize(
    ("approvals", "message"),
    [
        (
            {"required": ["court-release", "court-releases"]},
            (
                "approvals.required: unknown action 'court-releases'; the actions are: "
                "emergency-filing, protected-expression-refusal, court-release, restricted-share"
            ),
        ),
        ({"required": [7]}, "approvals.required: unknown action 7"),
        ({"required": "court-release"}, "approvals.required must be a list"),
        ({"expire_days": 0}, "approvals.expire_days must be 1 to 90 days, not 0"),
        ({"expire_days": 365}, "approvals.expire_days must be 1 to 90 days, not 365"),
        ({"expire_after": 3}, "unknown key approvals.expire_after"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_key_and_value(
    config_file: Path, approvals: dict[str, Any], message: str
) -> None:
    _rewrite(config_file, approvals)
    with pytest.raises(ConfigError, match=re.escape(f"{config_file}: {message}")):
        load_config(config_file)


def test_emergency_types_are_those_with_the_emergency_trait() -> None:
    assert filing_policy(traits_of("emergency-disclosure")) is Policy.EMERGENCY_FILING
    for kind in ("preservation", "production", "campaign-alert"):
        assert filing_policy(traits_of(kind)) is None


@pytest.mark.parametrize(
    ("kind", "body", "held"),
    [
        ("decision", {"outcome": "refused", "grounds": ["protected_expression"]}, True),
        ("decision", {"outcome": "refused", "grounds": ["data_not_held", PE]}, True),
        ("decision", {"outcome": "partially_accepted", "grounds": ["protected_expression"]}, True),
        ("decision", {"outcome": "refused", "grounds": ["dual_criminality"]}, False),
        ("decision", {"outcome": "accepted"}, False),
        ("decision", {"outcome": "refused", "grounds": "protected_expression"}, False),
        ("closure", {"outcome": "refused", "grounds": ["protected_expression"]}, False),
    ],
)  # fmt: skip
def test_refusals_on_protected_expression_are_held(
    kind: str, body: dict[str, Any], held: bool
) -> None:
    expected = Policy.PROTECTED_EXPRESSION_REFUSAL if held else None
    assert message_policy(kind, json.loads(json.dumps(body))) is expected


def test_court_releases_and_restricted_labels_are_held() -> None:
    assert release_policy("court") is Policy.COURT_RELEASE
    assert release_policy("agency") is None
    assert share_policy("TLP:RED") is Policy.RESTRICTED_SHARE
    assert share_policy("TLP:AMBER+STRICT") is Policy.RESTRICTED_SHARE
    for label in ("TLP:AMBER", "TLP:GREEN", "TLP:CLEAR", ""):
        assert share_policy(label) is None
