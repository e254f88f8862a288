# SPDX-License-Identifier: Apache-2.0
"""Node configuration files and `node init`."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import init_node, load_config
from node.crypto.keys import AgencyKeys
from node.errors import ConfigError
from node.members import read_member_card


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    init_node(
        directory=tmp_path / "node",
        agency_id="aa-cyber-unit",
        country="EE",
        roles=["requesting"],
        listen="127.0.0.1:7401",
    )
    return tmp_path / "node"


def test_init_creates_a_loadable_node(node_dir: Path) -> None:
    config = load_config(node_dir / "comity.toml")
    assert config.agency_id == "aa-cyber-unit"
    assert config.database_url == f"sqlite:///{node_dir / 'comity.db'}"
    assert config.local_socket == node_dir / "comity.sock"
    assert config.directory_file == node_dir / "directory.json"
    keys = AgencyKeys.load(config.keys_dir)
    card = read_member_card((node_dir / "member.toml").read_text())
    assert card.agency_id == "aa-cyber-unit"
    assert card.signing_key == keys.signing_public
    assert card.encryption_key == keys.encryption_public
    assert (node_dir / "tls" / "node.key").stat().st_mode & 0o777 == 0o600
    assert node_dir.stat().st_mode & 0o777 == 0o700


def test_init_refuses_an_existing_node(node_dir: Path) -> None:
    with pytest.raises(ConfigError, match="exists already"):
        init_node(
            directory=node_dir,
            agency_id="aa-cyber-unit",
            country="EE",
            roles=["requesting"],
            listen="127.0.0.1:7401",
        )


@pytest.mark.parametrize(
    ("agency", "roles", "match"),
    [("AA unit", ["requesting"], "agency-id"), ("aa-unit", ["judge"], "unknown role")],
)
def test_init_refuses_bad_arguments(
    tmp_path: Path, agency: str, roles: list[str], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        init_node(
            directory=tmp_path / "n",
            agency_id=agency,
            country="EE",
            roles=roles,
            listen="127.0.0.1:1",
        )


BAD_CONFIGS = [
    ("", "agency_id is required"),
    ('agency_id = "aa-unit"\n', "federation.listen is required"),
    ('agency_id = "aa-unit"\ncolour = 1\n', "unknown key colour"),
    ('agency_id = "aa-unit"\n[extras]\n', "unknown section [extras]"),
    ('agency_id = 5\n[federation]\nlisten = "h:1"\n', "agency_id must be a str"),
    ('agency_id = "Bad Id"\n[federation]\nlisten = "h:1"\n', "agency_id must be"),
    ('agency_id = "aa-unit"\n[federation]\nlisten = "nowhere"\n', "host:port"),
    (
        'agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\nmax_concurrent_rpcs = 0\n',
        "max_concurrent_rpcs must be positive",
    ),
    (
        'agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\nmax_calls_per_peer = 300\n',
        "max_calls_per_peer must be positive and at most federation.max_concurrent_rpcs",
    ),
    (
        'agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\nmax_connection_age_s = 0\n',
        "max_connection_age_s must be positive",
    ),
    (
        'agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\n[telemetry]\nexporter = "jaeger"\n',
        "telemetry.exporter",
    ),
    (
        'agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\n[logging]\nlevel = "LOUD"\n',
        "logging.level",
    ),
    (
        'agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\nmessage_lifetime_s = 1\n',
        "message_lifetime_s",
    ),
    ("agency_id = \n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "match"), BAD_CONFIGS)
def test_bad_configuration_names_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "comity.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in caught.value.message
    assert match in caught.value.message


def test_missing_configuration_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_example_configuration_loads() -> None:
    config = load_config(Path(__file__).parents[2] / "ops" / "examples" / "comity.toml")
    assert config.telemetry_exporter == "none"


def test_a_member_gets_at_most_half_of_a_small_call_budget(tmp_path: Path) -> None:
    path = tmp_path / "comity.toml"
    path.write_text(
        'agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\nmax_concurrent_rpcs = 8\n'
    )
    assert load_config(path).max_calls_per_peer == 4
    path.write_text('agency_id = "aa-unit"\n[federation]\nlisten = "h:1"\n')
    assert load_config(path).max_calls_per_peer == 32
