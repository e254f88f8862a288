# SPDX-License-Identifier: Apache-2.0
"""`comity federation …`: the key ceremony as an operator runs it, then publishing to a node."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import stat
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from node.cli.main import main
from node.crypto.keys import AgencyKeys, key_id, load_signing_key
from node.federation import ceremony
from node.federation.document import parse_directory
from node.federation.setup import root_key_path
from node.ids import AgencyId
from node.members import member_card
from node.tls import generate_tls_identity
from tests.integration.harness import Federation, current_directory

UNIT = "aa-cyber-unit"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ceremony_from_keygen_to_a_verified_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        code, out, _ = run(capsys, "federation", "keygen", "--out", str(tmp_path / f"r{i}.key"))
        assert code == 0
        assert "private" in out
    assert stat.S_IMODE((tmp_path / "r0.key").stat().st_mode) == 0o600
    directory = str(tmp_path / "directory.json")
    roots = [a for i in range(3) for a in ("--root-key", str(tmp_path / f"r{i}.key.pub"))]
    code, out, _ = run(capsys, "federation", "init", directory, *roots, "--threshold", "2")
    assert code == 0
    assert "Needs 2 more root signature(s)" in out

    card = _card(tmp_path)
    code, _, _ = run(capsys, "federation", "add-member", directory, str(card))
    assert code == 0
    run(capsys, "federation", "sign", directory, "--key", str(tmp_path / "r0.key"), "--out",
        str(tmp_path / "s0.json"))  # fmt: skip

    code, out, _ = run(capsys, "federation", "verify", str(tmp_path / "s0.json"))
    assert code == 1
    assert "1 of the 2 required" in out
    assert "NOT acceptable" in out

    run(capsys, "federation", "sign", directory, "--key", str(tmp_path / "r2.key"), "--out",
        str(tmp_path / "s2.json"))  # fmt: skip
    merged = str(tmp_path / "merged.json")
    code, _, _ = run(
        capsys, "federation", "merge", str(tmp_path / "s0.json"), str(tmp_path / "s2.json"),
        "--out", merged,
    )  # fmt: skip
    assert code == 0
    code, out, _ = run(capsys, "federation", "verify", merged, "--json")
    assert code == 0
    verdict = json.loads(out)
    assert verdict["acceptable"] is True
    code, out, _ = run(capsys, "federation", "show", merged, "--json")
    shown = json.loads(out)
    assert [m["agency_id"] for m in shown["members"]] == ["zz-agency"]
    assert {k["status"] for k in shown["members"][0]["keys"]} == {"active"}
    assert len(shown["signed_by"]) == 2


def test_merging_different_drafts_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "federation", "keygen", "--out", str(tmp_path / "r.key"))
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    for path, days in ((a, "30"), (b, "60")):
        run(capsys, "federation", "init", path, "--root-key", str(tmp_path / "r.key.pub"),
            "--threshold", "1", "--valid-days", days)  # fmt: skip
    code, _, err = run(capsys, "federation", "merge", a, b, "--out", str(tmp_path / "m.json"))
    assert code == 1
    assert "merge-mismatch" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("federation", "init", "{d}", "--root-key", "bm90IGEga2V5", "--threshold", "1"),
         "must be 32 bytes"),
        (("federation", "init", "{d}", "--root-key", "!!", "--threshold", "1"),
         "neither a .pub file nor a base64"),
        (("federation", "show", "{missing}"), "cannot read"),
    ],
)  # fmt: skip
def test_bad_ceremony_input_gets_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    formatted = [a.format(d=tmp_path / "d.json", missing=tmp_path / "none.json") for a in args]
    code, _, err = run(capsys, *formatted)
    assert code == 1
    assert message in err
    assert "Traceback" not in err


def _draft_with_roots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    for name in ("r0", "r1", "stranger"):
        run(capsys, "federation", "keygen", "--out", str(tmp_path / f"{name}.key"))
    directory = str(tmp_path / "directory.json")
    run(capsys, "federation", "init", directory, "--root-key", str(tmp_path / "r0.key.pub"),
        "--root-key", str(tmp_path / "r1.key.pub"), "--threshold", "1")  # fmt: skip
    return directory


@pytest.mark.parametrize(
    ("key_file", "message"),
    [
        ("r0.key.pub", "is a public key file"),
        ("renamed-public.key", "holds a root PUBLIC key"),
        ("stranger.key", "not-a-root-key"),
    ],
)
def test_signing_with_anything_but_a_root_private_key_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key_file: str, message: str
) -> None:
    directory = _draft_with_roots(tmp_path, capsys)
    renamed = tmp_path / "renamed-public.key"
    renamed.write_bytes((tmp_path / "r0.key.pub").read_bytes())
    for path in (renamed, tmp_path / "r0.key.pub"):
        path.chmod(0o600)  # the mode check alone must not be what refuses it
    before = Path(directory).read_bytes()
    code, _, err = run(capsys, "federation", "sign", directory, "--key", str(tmp_path / key_file))
    assert code == 1
    assert message in err
    assert Path(directory).read_bytes() == before


def test_a_passphrase_encrypted_root_key_signs_only_with_its_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMITY_ROOT_KEY_PASSPHRASE", "correct horse")
    key = tmp_path / "r0.key"
    code, _, _ = run(capsys, "federation", "keygen", "--out", str(key), "--encrypt")
    assert code == 0
    secret = load_signing_key(key, passphrase=lambda: b"correct horse")
    assert base64.b64encode(bytes(secret)) not in key.read_bytes()  # not stored in the clear
    directory = str(tmp_path / "directory.json")
    run(capsys, "federation", "init", directory, "--root-key", f"{key}.pub", "--threshold", "1")

    monkeypatch.setenv("COMITY_ROOT_KEY_PASSPHRASE", "wrong horse")
    code, _, err = run(capsys, "federation", "sign", directory, "--key", str(key))
    assert code == 1
    assert "wrong passphrase" in err
    monkeypatch.setenv("COMITY_ROOT_KEY_PASSPHRASE", "correct horse")
    code, _, _ = run(capsys, "federation", "sign", directory, "--key", str(key))
    assert code == 0
    code, _, _ = run(capsys, "federation", "verify", directory)
    assert code == 0


def test_verify_fails_on_a_signature_by_an_unknown_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _draft_with_roots(tmp_path, capsys)
    run(capsys, "federation", "sign", directory, "--key", str(tmp_path / "r0.key"))
    code, _, _ = run(capsys, "federation", "verify", directory)
    assert code == 0
    stranger = load_signing_key(tmp_path / "stranger.key")
    Path(directory).write_bytes(
        ceremony.sign(parse_directory(Path(directory).read_bytes()), stranger).to_json()
    )
    code, out, _ = run(capsys, "federation", "verify", directory, "--json")
    assert code == 1
    verdict = json.loads(out)
    assert verdict["refused_by_rule"] == "unknown-signer"
    assert key_id(bytes(stranger.verify_key)) in json.dumps(verdict["checks"])


def test_old_root_holders_sign_a_change_of_roots_against_the_trusted_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _draft_with_roots(tmp_path, capsys)
    run(capsys, "federation", "sign", directory, "--key", str(tmp_path / "r0.key"))
    trusted = tmp_path / "trusted.json"
    trusted.write_bytes(Path(directory).read_bytes())
    code, _, _ = run(capsys, "federation", "set-roots", directory, "--root-key",
                     str(tmp_path / "stranger.key.pub"), "--threshold", "1")  # fmt: skip
    assert code == 0
    old_root = ("--key", str(tmp_path / "r0.key"))
    code, _, err = run(capsys, "federation", "sign", directory, *old_root)
    assert code == 1
    assert "give the trusted version" in err
    code, _, _ = run(capsys, "federation", "sign", directory, *old_root, "--trusted", str(trusted))
    assert code == 0
    run(capsys, "federation", "sign", directory, "--key", str(tmp_path / "stranger.key"))
    code, _, _ = run(capsys, "federation", "verify", directory, "--trusted", str(trusted))
    assert code == 0


def test_a_member_card_whose_certificate_names_another_host_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _draft_with_roots(tmp_path, capsys)
    card = _card(tmp_path)
    listed = parse_member_certificate(card)
    card.write_text(
        card.read_text().replace(
            listed, _certificate("zz-agency", dns_name="other.example").decode()
        )
    )
    code, _, err = run(capsys, "federation", "add-member", directory, str(card))
    assert code == 1
    assert "subjectAltName" in err
    assert "zz-agency" in err
    assert parse_directory(Path(directory).read_bytes()).body.members == ()


def test_a_new_certificate_that_names_another_host_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _draft_with_roots(tmp_path, capsys)
    run(capsys, "federation", "add-member", directory, str(_card(tmp_path)))
    before = Path(directory).read_bytes()
    certificate = tmp_path / "new.crt"
    certificate.write_bytes(_certificate("zz-agency", dns_name="other.example"))
    code, _, err = run(capsys, "federation", "set-endpoint", directory, "zz-agency",
                       "--certificate", str(certificate))  # fmt: skip
    assert code == 1
    assert "subjectAltName" in err
    assert Path(directory).read_bytes() == before


def parse_member_certificate(card: Path) -> str:
    certificate: str = tomllib.loads(card.read_text())["member"][0]["tls_certificate"]
    assert certificate in card.read_text()
    return certificate


def _certificate(common_name: str, *, dns_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


async def test_publish_to_a_running_node_and_rollback_refused(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = fed.configs[UNIT]
    roots = config.config_path.parent.parent / "roots"
    first = tmp_path / "v1.json"
    first.write_bytes(current_directory(config).to_json())
    draft = tmp_path / "v2.json"
    draft.write_bytes(first.read_bytes())

    def cli(*args: str) -> tuple[int, str, str]:
        return run(capsys, *args)

    await asyncio.to_thread(cli, "federation", "renew", str(draft), "--valid-days", "30")
    for i in (0, 1):
        await asyncio.to_thread(
            cli, "federation", "sign", str(draft), "--key", str(root_key_path(roots, i))
        )
    assert parse_directory(draft.read_bytes()).version == 2
    code, out, _ = await asyncio.to_thread(
        cli, "federation", "publish", str(draft), "--config", str(config.config_path)
    )
    assert code == 0, out
    assert "trusts directory version 2 now" in out
    assert fed.nodes[UNIT].directory.version == 2

    code, _, err = await asyncio.to_thread(
        cli, "federation", "publish", str(first), "--config", str(config.config_path)
    )
    assert code == 1
    assert "rollback" in err
    assert fed.nodes[UNIT].directory.version == 2


def _card(tmp_path: Path) -> Path:
    certificate, _ = generate_tls_identity(AgencyId("zz-agency"))
    path = tmp_path / "member.toml"
    path.write_text(
        member_card(
            agency_id="zz-agency",
            country="PT",
            roles=["central_authority"],
            endpoint="127.0.0.1:7401",
            keys=AgencyKeys.generate(),
            tls_certificate=certificate,
        )
    )
    return path
