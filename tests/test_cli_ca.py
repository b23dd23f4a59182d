"""trustctl init (default CA hierarchies, once) and trustctl ca: create, list, show,
issue, revoke, crl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from api.cli.main import app
from trust.settings import Settings, get_settings


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("TRUST_VAR_DIR", str(tmp_path / "var"))
    for name in ("TRUST_DATABASE_URL", "TRUST_REDIS_URL", "TRUST_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TRUST_MASTER_KEY_FILE", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(cli: CliRunner, *args: str, code: int = 0) -> Any:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def cas(cli: CliRunner) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(run(cli, "ca", "list", "--json").stdout)["cas"]
    return listed


def test_init_creates_the_default_hierarchy_once(cli: CliRunner) -> None:
    first = run(cli, "init").stdout
    assert first.count("created  CA") == 4
    made = cas(cli)
    defaults = Settings()
    assert {c["name"] for c in made} == {
        defaults.ca_default_sm2_root_name,
        defaults.ca_default_sm2_issuing_name,
        defaults.ca_default_ecdsa_root_name,
        defaults.ca_default_ecdsa_issuing_name,
    }
    assert sorted(c["algorithm"] for c in made) == ["ecdsa-p256"] * 2 + ["sm2"] * 2
    for ca in made:
        assert ca["id"] in first
    second = run(cli, "init").stdout
    assert second.count("existing CA") == 4 and "created  CA" not in second
    assert cas(cli) == made


def test_init_without_default_ca(cli: CliRunner) -> None:
    assert "CA " not in run(cli, "init", "--no-default-ca").stdout
    assert cas(cli) == []


def test_create_issue_revoke_crl(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init", "--no-default-ca")
    root = json.loads(
        run(cli, "ca", "create", "CLI Root", "--algorithm", "ecdsa-p256", "--json").stdout
    )
    sub = json.loads(
        run(
            cli, "ca", "create", "CLI Issuing", "--algorithm", "ecdsa-p256",
            "--parent", root["id"], "--subject", "C=CN,O=CLI,CN=CLI Issuing", "--json",
        ).stdout
    )  # fmt: skip
    assert sub["parent_id"] == root["id"] and sub["subject"] == "C=CN, O=CLI, CN=CLI Issuing"
    assert "CLI Issuing" in run(cli, "ca", "show", sub["id"]).stdout
    assert run(cli, "ca", "create", "CLI Root", code=2).stderr.startswith("error (ca_name_taken)")

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Wang Wu")]))
        .sign(key, hashes.SHA256())
    )
    csr_file = tmp_path / "req.der"
    csr_file.write_bytes(csr.public_bytes(serialization.Encoding.DER))
    cert_file = tmp_path / "leaf.pem"
    issued = json.loads(
        run(
            cli, "ca", "issue", sub["id"], "--csr", str(csr_file), "--profile", "person",
            "--out", str(cert_file), "--json",
        ).stdout
    )  # fmt: skip
    assert cert_file.read_text() == issued["certificate_pem"]
    serial = issued["serial_hex"]

    revoked = json.loads(
        run(cli, "ca", "revoke", serial, "--reason", "superseded", "--json").stdout
    )
    assert revoked["status"] == "revoked" and revoked["revocation_reason"] == "superseded"
    crl_file = tmp_path / "sub.crl"
    run(cli, "ca", "crl", sub["id"], "--out", str(crl_file))
    entries = asn1_crl.CertificateList.load(crl_file.read_bytes())["tbs_cert_list"][
        "revoked_certificates"
    ]
    assert [e["user_certificate"].native for e in entries] == [int(serial, 16)]
    assert "BEGIN X509 CRL" in run(cli, "ca", "crl", sub["id"], "--new").stdout

    bad = tmp_path / "bad.pem"
    bad.write_text("not a request")
    run(cli, "ca", "issue", sub["id"], "--csr", str(bad), "--profile", "person", code=2)


def test_crl_issue_runs_the_schedule_once(cli: CliRunner) -> None:
    run(cli, "init")
    ids = {c["id"] for c in cas(cli)}
    first = json.loads(run(cli, "ca", "crl", "--issue", "--json").stdout)
    assert set(first["issued"]) == ids  # no CRL yet: every CA is due
    assert json.loads(run(cli, "ca", "crl", "--issue", "--json").stdout) == {"issued": []}
    assert "no CRL was due" in run(cli, "ca", "crl", "--issue").output
    run(cli, "ca", "crl", "--issue", sorted(ids)[0], code=2)
    run(cli, "ca", "crl", code=2)
