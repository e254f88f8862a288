# SPDX-License-Identifier: Apache-2.0
"""Node configuration: one TOML file, paths relative to it, every value checked on load."""

from __future__ import annotations

import getpass
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w

from node.crypto.keys import AgencyKeys
from node.errors import ComityError, ConfigError
from node.files import write_private_file
from node.ids import AgencyId, parse_agency_id
from node.logs import FORMATS as LOG_FORMATS
from node.members import ROLES, member_card
from node.model.approvals import (
    ALL_POLICIES,
    DEFAULT_EXPIRE_DAYS,
    MAX_EXPIRE_DAYS,
    Policy,
    parse_policies,
)
from node.model.oidc import OidcConfig
from node.model.people import Role, parse_roles
from node.telemetry import EXPORTERS
from node.tls import generate_tls_identity

CONFIG_FILE = "comity.toml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
USER_ROLES = tuple(role.value for role in Role)


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
    log_format: str = "text"
    """``text`` or ``json``: one line per record either way."""
    health_listen: str | None = None
    """A plain HTTP address answering ``/livez`` and ``/readyz`` (off when None)."""
    max_concurrent_rpcs: int = 256
    delivery_timeout_s: float = 10.0
    stream_idle_s: float = 30.0
    """How long a peer's client stream (evidence chunks, an indicator set in chunks, overlap
    points) may go without a message before this node ends it."""
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
    """How many overlap checks (and reveals) each peer may ask this node for in 24 hours."""
    overlap_items_per_day: int = 200_000
    """How many points (values asked about) those checks and reveals may carry in 24 hours."""
    overlap_min_items: int = 10
    """The fewest points an overlap check may carry (a count over one value is a membership
    test; reveals are bounded by consent instead)."""
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
    local_tls_listen: str | None = None
    """An address where the Local API is also served over TLS, for case-management systems on
    other hosts: service tokens and sessions only, never login tickets."""
    local_group: str | None = None
    """A group of the node's machine whose members may reach the local socket (their own
    logins then map to Comity users); without it only the node's own login can."""
    bootstrap_os_user: str | None = None
    """The login that becomes the first admin when the node starts with no users."""
    bootstrap_roles: tuple[str, ...] = ("admin",)
    """The roles of that first admin."""
    approvals_required: frozenset[Policy] = ALL_POLICIES
    """The actions a person's request for only queues until a supervisor approves it."""
    approvals_expire_days: int = DEFAULT_EXPIRE_DAYS
    """Days after which an approval nobody decided can no longer be approved."""
    oidc: OidcConfig | None = None
    """Console sign-in through the agency's OpenID Connect provider (``[oidc]``)."""


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
        "delivery_timeout_s": (float, False),
        "stream_idle_s": (float, False),
        "message_lifetime_s": (int, False),
    },
    "local": {"socket": (str, False), "group": (str, False), "tls_listen": (str, False)},
    "people": {"bootstrap_os_user": (str, False), "bootstrap_roles": (list, False)},
    "approvals": {"required": (list, False), "expire_days": (int, False)},
    "storage": {"url": (str, False)},
    "keys": {"directory": (str, False)},
    "tls": {"certificate": (str, False), "private_key": (str, False)},
    "telemetry": {"exporter": (str, False), "otlp_endpoint": (str, False)},
    "logging": {"level": (str, False), "format": (str, False)},
    "health": {"listen": (str, False)},
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
    "indicators": {
        "overlap_checks_per_day": (int, False),
        "overlap_items_per_day": (int, False),
        "overlap_min_items": (int, False),
        "resend_interval_s": (float, False),
    },
    "campaigns": {"min_shared": (int, False), "max_sets_per_value": (int, False)},
    # Each required when the section is there (checked by _oidc_config).
    "oidc": {
        "issuer": (str, False),
        "client_id": (str, False),
        "client_secret_file": (str, False),
        "redirect_uri": (str, False),
        "username_claim": (str, False),
        "roles_claim": (str, False),
        "role_map": (dict, False),
        "scopes": (list, False),
    },
}
_OIDC_REQUIRED = ("issuer", "client_id", "client_secret_file", "redirect_uri")


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
    if "oidc" in sections:
        config = replace(config, oidc=_oidc_config(sections["oidc"], config.config_path, source))
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
        log_format=get("logging", "format", "text"),
        health_listen=get("health", "listen", None),
        max_concurrent_rpcs=get("federation", "max_concurrent_rpcs", 256),
        delivery_timeout_s=float(get("federation", "delivery_timeout_s", 10.0)),
        stream_idle_s=float(get("federation", "stream_idle_s", 30.0)),
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
        overlap_items_per_day=get("indicators", "overlap_items_per_day", 200_000),
        overlap_min_items=get("indicators", "overlap_min_items", 10),
        indicator_resend_interval_s=float(get("indicators", "resend_interval_s", 5.0)),
        campaign_min_shared=get("campaigns", "min_shared", 2),
        campaign_max_sets_per_value=get("campaigns", "max_sets_per_value", 20),
        directory_sync_interval_s=float(get("federation", "directory_sync_interval_s", 300.0)),
        directory_grace_s=float(get("federation", "directory_grace_s", 86400.0)),
        share_port=get("federation", "share_port", False),
        local_group=get("local", "group", None),
        local_tls_listen=get("local", "tls_listen", None),
        bootstrap_os_user=get("people", "bootstrap_os_user", None),
        bootstrap_roles=tuple(get("people", "bootstrap_roles", ["admin"])),
        approvals_required=_policies(get("approvals", "required", None), str(path)),
        approvals_expire_days=get("approvals", "expire_days", DEFAULT_EXPIRE_DAYS),
    )


def _policies(names: list[Any] | None, source: str) -> frozenset[Policy]:
    """``approvals.required``, each name checked; every action when the key is absent."""
    if names is None:
        return ALL_POLICIES
    try:
        return parse_policies(names)
    except ValueError as e:
        raise ConfigError(f"{source}: approvals.required: {e}") from e


def _check_operations(config: NodeConfig, source: str) -> None:
    """Logging and the health port."""
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"{source}: logging.level must be one of {', '.join(LOG_LEVELS)}")
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(f"{source}: logging.format must be one of {', '.join(LOG_FORMATS)}")
    if config.health_listen is not None and ":" not in config.health_listen:
        raise ConfigError(f"{source}: health.listen must be host:port")


def _check_values(config: NodeConfig, source: str) -> None:
    if config.telemetry_exporter not in EXPORTERS:
        raise ConfigError(f"{source}: telemetry.exporter must be one of {', '.join(EXPORTERS)}")
    _check_operations(config, source)
    if ":" not in config.listen:
        raise ConfigError(f"{source}: federation.listen must be host:port")
    _positive(config.max_concurrent_rpcs, "federation.max_concurrent_rpcs", source)
    _positive(config.delivery_timeout_s, "federation.delivery_timeout_s", source)
    _positive(config.stream_idle_s, "federation.stream_idle_s", source)
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
    _positive(config.overlap_items_per_day, "indicators.overlap_items_per_day", source)
    _positive(config.overlap_min_items, "indicators.overlap_min_items", source)
    _positive(config.indicator_resend_interval_s, "indicators.resend_interval_s", source)
    _positive(config.campaign_min_shared, "campaigns.min_shared", source)
    if config.campaign_max_sets_per_value < 2:
        raise ConfigError(f"{source}: campaigns.max_sets_per_value must be at least 2")
    if config.file_wait_s < 0:
        raise ConfigError(f"{source}: delivery.file_wait_s must not be negative")
    if not 60 <= config.message_lifetime_s <= 7 * 86400:
        raise ConfigError(f"{source}: federation.message_lifetime_s must be 60 s to 7 days")
    _check_people(config, source)


def _check_people(config: NodeConfig, source: str) -> None:
    unknown = [r for r in config.bootstrap_roles if not isinstance(r, str) or r not in USER_ROLES]
    if unknown or not config.bootstrap_roles:
        raise ConfigError(
            f"{source}: people.bootstrap_roles must list roles among {', '.join(USER_ROLES)}"
        )
    if config.local_tls_listen is not None and ":" not in config.local_tls_listen:
        raise ConfigError(f"{source}: local.tls_listen must be host:port")
    if config.local_group is not None and not config.local_group:
        raise ConfigError(f"{source}: local.group must name a group of the node's machine")
    if not 1 <= config.approvals_expire_days <= MAX_EXPIRE_DAYS:
        raise ConfigError(
            f"{source}: approvals.expire_days must be 1 to {MAX_EXPIRE_DAYS} days, "
            f"not {config.approvals_expire_days}"
        )


def _oidc_config(section: Mapping[str, Any], path: Path, source: str) -> OidcConfig:
    """``[oidc]``, checked: the four keys that name the provider and this client are needed."""
    missing = [key for key in _OIDC_REQUIRED if key not in section]
    if missing:
        raise ConfigError(f"{source}: [oidc] needs {', '.join(f'oidc.{k}' for k in missing)}")
    role_map = section.get("role_map", {})
    try:
        roles = {
            str(value): parse_roles(names if isinstance(names, list) else [names])
            for value, names in role_map.items()
        }
        return OidcConfig(
            issuer=section["issuer"],
            client_id=section["client_id"],
            client_secret_file=path.parent / section["client_secret_file"],
            redirect_uri=section["redirect_uri"],
            username_claim=section.get("username_claim", "preferred_username"),
            roles_claim=section.get("roles_claim"),
            role_map=roles,
            scopes=tuple(str(scope) for scope in section.get("scopes", ["openid", "profile"])),
        )
    except ComityError as e:
        raise ConfigError(f"{source}: {e.message}") from e


def init_node(
    *,
    directory: Path,
    agency_id: str,
    country: str,
    roles: Sequence[str],
    listen: str,
    endpoint: str | None = None,
    database_url: str | None = None,
    admin_roles: Sequence[str] = ("admin",),
    approvals: Iterable[Policy] = ALL_POLICIES,
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
    if set(admin_roles) - set(USER_ROLES):
        raise ConfigError(f"unknown user role(s) in {list(admin_roles)}; known: {USER_ROLES}")
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
        _initial_config(
            agency, listen, database_url or "sqlite:///comity.db", admin_roles, approvals
        ),
        encoding="utf-8",
    )
    return load_config(config_path)


def _initial_config(
    agency: str,
    listen: str,
    database_url: str,
    admin_roles: Sequence[str],
    approvals: Iterable[Policy],
) -> str:
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
            "people": {
                "bootstrap_os_user": getpass.getuser(),
                "bootstrap_roles": list(admin_roles),
            },
            "approvals": {
                "required": sorted(p.value for p in approvals),
                "expire_days": DEFAULT_EXPIRE_DAYS,
            },
        }
    )
