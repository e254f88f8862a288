# SPDX-License-Identifier: Apache-2.0
"""Key ids, key files and their permissions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from node.crypto.keys import AgencyKeys, decode_public_key, encode_public_key, key_id
from node.errors import ConfigError


def test_key_id_is_truncated_sha256_hex() -> None:
    raw = bytes(range(32))
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()[:32]


def test_signing_and_encryption_keys_are_separate() -> None:
    keys = AgencyKeys.generate()
    assert keys.signing_public != keys.encryption_public
    assert bytes(keys.signing) != bytes(keys.encryption)


def test_save_and_load_round_trip_with_private_modes(tmp_path: Path) -> None:
    keys = AgencyKeys.generate()
    keys.save(tmp_path / "keys")
    for name in ("signing.key", "encryption.key"):
        assert (tmp_path / "keys" / name).stat().st_mode & 0o777 == 0o600
    loaded = AgencyKeys.load(tmp_path / "keys")
    assert loaded.signing_key_id == keys.signing_key_id
    assert loaded.encryption_key_id == keys.encryption_key_id


def test_repr_shows_no_private_key(tmp_path: Path) -> None:
    keys = AgencyKeys.generate()
    text = repr(keys)
    assert bytes(keys.signing).hex() not in text
    assert keys.signing_key_id in text


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    AgencyKeys.generate().save(tmp_path)
    with pytest.raises(ConfigError, match="overwrite"):
        AgencyKeys.generate().save(tmp_path)


def test_load_refuses_group_readable_key(tmp_path: Path) -> None:
    AgencyKeys.generate().save(tmp_path)
    (tmp_path / "signing.key").chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        AgencyKeys.load(tmp_path)


@pytest.mark.parametrize(("content", "match"), [("not base64!", "not base64"), ("AAAA", "32-byte")])
def test_load_refuses_malformed_key_file(tmp_path: Path, content: str, match: str) -> None:
    AgencyKeys.generate().save(tmp_path)
    (tmp_path / "signing.key").write_text(content)
    with pytest.raises(ConfigError, match=match):
        AgencyKeys.load(tmp_path)


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"signing\.key does not exist"):
        AgencyKeys.load(tmp_path)


def test_public_key_text_round_trip_and_refusals() -> None:
    raw = bytes(range(32))
    assert decode_public_key(encode_public_key(raw), field="k") == raw
    with pytest.raises(ConfigError, match="k must decode to 32 bytes"):
        decode_public_key(encode_public_key(raw[:31]), field="k")
    with pytest.raises(ConfigError, match="k is not valid base64"):
        decode_public_key("@@@", field="k")
