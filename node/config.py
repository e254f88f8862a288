# SPDX-License-Identifier: Apache-2.0
"""Node configuration: one TOML file, paths relative to it, every value checked on load."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from node.crypto.keys import AgencyKeys
from node.errors import ComityError, ConfigError
from node.files import write_private_file
from node.ids import AgencyId, parse_agency_id
from node.members import ROLES, member_card
from node.telemetry import EXPORTERS
from node.tls import generate_tls_identity

CONFIG_FILE = "comity.toml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    config_path: Path
    agency_id: AgencyId
    listen: str
    local_socket: Path
    database_url: str
    directory_file: Path
    keys_dir: Path
    tls_certificate: Path
    tls_private_key: Path
    telemetry_exporter: str = "none"
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    max_concurrent_rpcs: int = 256
    max_calls_per_peer: int = 32
    """Calls one member may have open at once at the federation server, streams included."""
    max_connection_age_s: float = 600.0
    """A federation connection is closed after this long; the peer reconnects, passing the
    handshake again against the directory trusted then."""
    max_connection_age_grace_s: float = 120.0
    """Calls still running on a connection being closed get this long to finish."""
    delivery_timeout_s: float = 10.0
    message_lifetime_s: int = 86400
    grace_period_s: float = 10.0
    file_wait_s: float = 5.0
    retry_base_s: float = 0.5
    retry_cap_s: float = 60.0
    poll_interval_s: float = 1.0
    max_in_flight: int = 16
    outbox_capacity: int = 10_000
    alert_after_s: float = 300.0
    cosign_interval_s: float = 60.0
    erase_interval_s: float = 3600.0
    """How often the node erases the audit openings whose retention has ended."""
    overlap_checks_per_day: int = 24
    """How many overlap checks each peer may ask this node for in 24 hours."""
    indicator_resend_interval_s: float = 5.0
    """How often indicator set versions and sighting reports owed to unreachable agencies are
    looked for and offered again (each on its own exponential backoff, ``delivery.retry_*``)."""
    campaign_min_shared: int = 2
    """How many values two cases share before they are linked into a campaign."""
    campaign_max_sets_per_value: int = 20
    """A value held in more indicator sets than this is too common to link cases."""
    directory_sync_interval_s: float = 300.0
    directory_grace_s: float = 86400.0
    share_port: bool = False
    """Replicas of one node on one host listen on the same port (SO_REUSEPORT)."""


# section -> key -> (type, required)
_SCHEMA: dict[str, dict[str, tuple[type, bool]]] = {
    "": {"agency_id": (str, True)},
    "federation": {
        "listen": (str, True),
        "directory_file": (str, False),
        "directory_sync_interval_s": (float, False),
        "directory_grace_s": (float, False),
        "share_port": (bool, False),
        "max_concurrent_rpcs": (int, False),
        "max_calls_per_peer": (int, False),
        "max_connection_age_s": (float, False),
        "max_connection_age_grace_s": (float, False),
        "delivery_timeout_s": (float, False),
        "message_lifetime_s": (int, False),
    },
    "local": {"socket": (str, False)},
    "storage": {"url": (str, False)},
    "keys": {"directory": (str, False)},
    "tls": {"certificate": (str, False), "private_key": (str, False)},
    "telemetry": {"exporter": (str, False), "otlp_endpoint": (str, False)},
    "logging": {"level": (str, False)},
    "shutdown": {"grace_period_s": (float, False)},
    "delivery": {
        "file_wait_s": (float, False),
        "retry_base_s": (float, False),
        "retry_cap_s": (float, False),
        "poll_interval_s": (float, False),
        "max_in_flight": (int, False),
        "outbox_capacity": (int, False),
        "alert_after_s": (float, False),
    },
    "audit": {"cosign_interval_s": (float, False), "erase_interval_s": (float, False)},
    "indicators": {"overlap_checks_per_day": (int, False), "resend_interval_s": (float, False)},
    "campaigns": {"min_shared": (int, False), "max_sets_per_value": (int, False)},
}


def _check_shape(document: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Split the document into sections, refusing unknown keys, wrong types, missing keys."""
    sections: dict[str, dict[str, Any]] = {"": {}}
    for key, value in document.items():
        if isinstance(value, dict):
            if key not in _SCHEMA or not key:
                raise ConfigError(f"{source}: unknown section [{key}]")
            sections[key] = value
        else:
            sections[""][key] = value
    _check_types(sections, source)
    _check_required(sections, source)
    return sections


def _check_types(sections: Mapping[str, Mapping[str, Any]], source: str) -> None:
    for section, values in sections.items():
        for key, value in values.items():
            name = f"{section}.{key}" if section else key
            if key not in _SCHEMA[section]:
                raise ConfigError(f"{source}: unknown key {name}")
            expected = _SCHEMA[section][key][0]
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
            if expected is bool:
                ok = isinstance(value, bool)
            elif isinstance(value, bool):
                ok = False
            if not ok:
                raise ConfigError(f"{source}: {name} must be a {expected.__name__}")


def _check_required(sections: Mapping[str, Mapping[str, Any]], source: str) -> None:
    for section, keys in _SCHEMA.items():
        for key, (_, required) in keys.items():
            if required and key not in sections.get(section, {}):
                name = f"{section}.{key}" if section else key
                raise ConfigError(f"{source}: {name} is required")


def _positive(value: float, name: str, source: str) -> None:
    if value <= 0:
        raise ConfigError(f"{source}: {name} must be positive")


def _sqlite_relative(url: str, base: Path) -> str:
    """Resolve ``sqlite:///relative.db`` against the config file's directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(base / url[len(prefix) :])
    return url


def load_config(path: Path) -> NodeConfig:
    """Read and check a node configuration file.

    Raises:
        ConfigError: missing file, invalid TOML, unknown keys, wrong types or bad values;
            the message names the file and the key.
    """
    source = str(path)
    sections = _check_shape(_read_toml(path), source)
    try:
        agency = parse_agency_id(sections[""]["agency_id"], field="agency_id")
    except ComityError as e:
        raise ConfigError(f"{source}: {e.message}") from e
    config = _node_config(path, agency, sections)
    _check_values(config, source)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"configuration file {path} does not exist") from e
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e


def _node_config(path: Path, agency: AgencyId, s: dict[str, dict[str, Any]]) -> NodeConfig:
    """The configuration from checked sections, with defaults for what they leave out and
    paths relative to the file's directory."""
    base = path.resolve().parent

    def get(section: str, key: str, default: Any) -> Any:
        return s.get(section, {}).get(key, default)

    return NodeConfig(
        config_path=path.resolve(),
        agency_id=agency,
        listen=get("federation", "listen", ""),
        local_socket=base / get("local", "socket", "comity.sock"),
        database_url=_sqlite_relative(get("storage", "url", "sqlite:///comity.db"), base),
        directory_file=base / get("federation", "directory_file", "directory.json"),
        keys_dir=base / get("keys", "directory", "keys"),
        tls_certificate=base / get("tls", "certificate", "tls/node.crt"),
        tls_private_key=base / get("tls", "private_key", "tls/node.key"),
        telemetry_exporter=get("telemetry", "exporter", "none"),
        otlp_endpoint=get("telemetry", "otlp_endpoint", None),
        log_level=get("logging", "level", "INFO"),
        max_concurrent_rpcs=get("federation", "max_concurrent_rpcs", 256),
        # A node configured for few calls in all gets at most half of them per member.
        max_calls_per_peer=get(
            "federation",
            "max_calls_per_peer",
            min(32, max(1, get("federation", "max_concurrent_rpcs", 256) // 2)),
        ),
        max_connection_age_s=float(get("federation", "max_connection_age_s", 600.0)),
        max_connection_age_grace_s=float(get("federation", "max_connection_age_grace_s", 120.0)),
        delivery_timeout_s=float(get("federation", "delivery_timeout_s", 10.0)),
        message_lifetime_s=get("federation", "message_lifetime_s", 86400),
        grace_period_s=float(get("shutdown", "grace_period_s", 10.0)),
        file_wait_s=float(get("delivery", "file_wait_s", 5.0)),
        retry_base_s=float(get("delivery", "retry_base_s", 0.5)),
        retry_cap_s=float(get("delivery", "retry_cap_s", 60.0)),
        poll_interval_s=float(get("delivery", "poll_interval_s", 1.0)),
        max_in_flight=get("delivery", "max_in_flight", 16),
        outbox_capacity=get("delivery", "outbox_capacity", 10_000),
        alert_after_s=float(get("delivery", "alert_after_s", 300.0)),
        cosign_interval_s=float(get("audit", "cosign_interval_s", 60.0)),
        erase_interval_s=float(get("audit", "erase_interval_s", 3600.0)),
        overlap_checks_per_day=get("indicators", "overlap_checks_per_day", 24),
        indicator_resend_interval_s=float(get("indicators", "resend_interval_s", 5.0)),
        campaign_min_shared=get("campaigns", "min_shared", 2),
        campaign_max_sets_per_value=get("campaigns", "max_sets_per_value", 20),
        directory_sync_interval_s=float(get("federation", "directory_sync_interval_s", 300.0)),
        directory_grace_s=float(get("federation", "directory_grace_s", 86400.0)),
        share_port=get("federation", "share_port", False),
    )


def _check_values(config: NodeConfig, source: str) -> None:
    if config.telemetry_exporter not in EXPORTERS:
        raise ConfigError(f"{source}: telemetry.exporter must be one of {', '.join(EXPORTERS)}")
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"{source}: logging.level must be one of {', '.join(LOG_LEVELS)}")
    if ":" not in config.listen:
        raise ConfigError(f"{source}: federation.listen must be host:port")
    _positive(config.max_concurrent_rpcs, "federation.max_concurrent_rpcs", source)
    _check_federation_limits(config, source)
    _positive(config.delivery_timeout_s, "federation.delivery_timeout_s", source)
    _positive(config.grace_period_s, "shutdown.grace_period_s", source)
    _positive(config.directory_sync_interval_s, "federation.directory_sync_interval_s", source)
    if config.directory_grace_s < 0:
        raise ConfigError(f"{source}: federation.directory_grace_s must not be negative")
    for name in (
        "retry_base_s",
        "retry_cap_s",
        "poll_interval_s",
        "max_in_flight",
        "outbox_capacity",
        "alert_after_s",
    ):
        _positive(getattr(config, name), f"delivery.{name}", source)
    _positive(config.cosign_interval_s, "audit.cosign_interval_s", source)
    _positive(config.erase_interval_s, "audit.erase_interval_s", source)
    _positive(config.overlap_checks_per_day, "indicators.overlap_checks_per_day", source)
    _positive(config.indicator_resend_interval_s, "indicators.resend_interval_s", source)
    _positive(config.campaign_min_shared, "campaigns.min_shared", source)
    if config.campaign_max_sets_per_value < 2:
        raise ConfigError(f"{source}: campaigns.max_sets_per_value must be at least 2")
    if config.file_wait_s < 0:
        raise ConfigError(f"{source}: delivery.file_wait_s must not be negative")
    if not 60 <= config.message_lifetime_s <= 7 * 86400:
        raise ConfigError(f"{source}: federation.message_lifetime_s must be 60 s to 7 days")


def _check_federation_limits(config: NodeConfig, source: str) -> None:
    if not 0 < config.max_calls_per_peer <= config.max_concurrent_rpcs:
        raise ConfigError(
            f"{source}: federation.max_calls_per_peer must be positive and at most "
            "federation.max_concurrent_rpcs (well below it, so that one member cannot take "
            "every call slot)"
        )
    _positive(config.max_connection_age_s, "federation.max_connection_age_s", source)
    if config.max_connection_age_grace_s < 0:
        raise ConfigError(f"{source}: federation.max_connection_age_grace_s must not be negative")


def init_node(
    *,
    directory: Path,
    agency_id: str,
    country: str,
    roles: Sequence[str],
    listen: str,
    endpoint: str | None = None,
    database_url: str | None = None,
) -> NodeConfig:
    """Create keys, TLS material, a configuration and a member card for a new node.

    The node starts once the secretariat's signed directory listing the card is saved as
    ``directory.json`` beside the configuration.

    Raises:
        ConfigError: the directory already holds a node, or an argument is invalid.
    """
    directory = directory.resolve()
    config_path = directory / CONFIG_FILE
    if config_path.exists():
        raise ConfigError(f"{config_path} exists already; refusing to overwrite a node")
    unknown = set(roles) - ROLES
    if unknown:
        raise ConfigError(f"unknown role(s) {sorted(unknown)}; known: {sorted(ROLES)}")
    try:
        agency = parse_agency_id(agency_id, field="--agency-id")
    except ComityError as e:
        raise ConfigError(e.message) from e
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / "tls").mkdir(mode=0o700, exist_ok=True)
    keys = AgencyKeys.generate()
    keys.save(directory / "keys")
    certificate, private_key = generate_tls_identity(agency)
    (directory / "tls" / "node.crt").write_bytes(certificate)
    write_private_file(directory / "tls" / "node.key", private_key)
    card = member_card(
        agency_id=agency,
        country=country,
        roles=roles,
        endpoint=endpoint or listen,
        keys=keys,
        tls_certificate=certificate,
    )
    (directory / "member.toml").write_text(card, encoding="utf-8")
    config_path.write_text(
        _initial_config(agency, listen, database_url or "sqlite:///comity.db"), encoding="utf-8"
    )
    return load_config(config_path)


def _initial_config(agency: str, listen: str, database_url: str) -> str:
    return tomli_w.dumps(
        {
            "agency_id": agency,
            "federation": {"listen": listen, "directory_file": "directory.json"},
            "local": {"socket": "comity.sock"},
            "storage": {"url": database_url},
            "keys": {"directory": "keys"},
            "tls": {"certificate": "tls/node.crt", "private_key": "tls/node.key"},
            "telemetry": {"exporter": "none"},
            "logging": {"level": "INFO"},
        }
    )
