"""trustctl seals apply|approve|make|list|show|suspend|resume|revoke|stamp|verify, on a store
made by trustctl init, with the signer from trustctl signers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seals.parse import parse_seal, parse_signature
from tests.seals_helpers import PNG
from tests.test_cli_ca import cas, run
from tests.test_cli_ca import cli as cli  # noqa: F401  (the fixture)
from trust.sm3 import sm3


def _as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: user)


def test_seal_lifecycle_stamp_and_verify(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(cli, "init")
    issuing = next(c for c in cas(cli) if c["algorithm"] == "sm2" and c["parent_id"])
    key = json.loads(
        run(
            cli,
            "keys",
            "create",
            "--algorithm",
            "SM2",
            "--label",
            "s",
            "--purpose",
            "seal",
            "--json",
        ).output
    )["id"]
    signer = json.loads(
        run(
            cli, "signers", "create", "--key", key, "--label", "签章人", "--ca", issuing["id"],
            "--profile", "seal_signer", "--subject", "CN=签章人", "--json",
        ).output
    )  # fmt: skip
    cert = tmp_path / "signer.pem"
    cert.write_text(signer["certificate_pem"])
    image = tmp_path / "seal.png"
    image.write_bytes(PNG)
    now = datetime.now(UTC)

    _as(monkeypatch, "officer-a")
    out = run(
        cli, "seals", "apply", "--type", "official", "--name", "某单位", "--organization", "某单位",
        "--image", str(image), "--width", "40", "--height", "40",
        "--valid-from", (now - timedelta(days=1)).isoformat(),
        "--valid-to", (now + timedelta(days=30)).isoformat(),
        "--signer-cert", str(cert), "--esid", "1101000000042", "--json",
    ).output  # fmt: skip
    assert json.loads(out)["status"] == "applied"
    refused = run(cli, "seals", "approve", "1101000000042", code=2)
    assert "seal_approval_refused" in refused.output
    _as(monkeypatch, "officer-b")
    run(cli, "seals", "approve", "1101000000042")
    esl = tmp_path / "seal.esl"
    run(cli, "seals", "make", "1101000000042", "--out", str(esl))
    assert parse_seal(esl.read_bytes()).info.es_id == "1101000000042"
    assert "1101000000042  active" in run(cli, "seals", "list").output
    shown = run(cli, "seals", "show", "1101000000042", "--history").output
    assert "officer-a" in shown and "officer-b" in shown

    data = tmp_path / "licence.xml"
    data.write_bytes("<证照/>".encode())
    stamped = tmp_path / "licence.sig"
    said = run(
        cli, "seals", "stamp", "1101000000042", "--signer", signer["id"], "--data", str(data),
        "--property-info", "licence.xml", "--out", str(stamped), "--revocation-mode", "require",
    ).output  # fmt: skip
    assert "signer certificate revocation: good (CA records)" in said
    assert parse_signature(stamped.read_bytes()).data_hash == sm3(data.read_bytes())
    report = json.loads(
        run(
            cli, "seals", "verify", str(stamped), "--data", str(data), "--json",
            "--revocation-mode", "require",
        ).output
    )  # fmt: skip
    assert report["indication"] == "passed", report
    assert (
        "--revocation-mode"
        in run(cli, "seals", "verify", str(stamped), "--revocation-mode", "never", code=2).output
    )
    other = tmp_path / "other.xml"
    other.write_bytes(b"<other/>")
    failed = run(cli, "seals", "verify", str(stamped), "--data", str(other), code=1).output
    assert "DATA_HASH_MISMATCH" in failed

    run(cli, "seals", "suspend", "1101000000042", "--reason", "检查")
    assert "SEAL_SUSPENDED" in run(cli, "seals", "verify", "--seal", str(esl), code=1).output
    run(cli, "seals", "resume", "1101000000042")
    run(cli, "seals", "verify", "--seal", str(esl))
    run(cli, "seals", "revoke", "1101000000042")
    refused = run(
        cli, "seals", "stamp", "1101000000042", "--signer", signer["id"], "--sm3", sm3(b"x").hex(),
        "--property-info", "x", "--out", str(tmp_path / "no.sig"), code=2,
    ).output  # fmt: skip
    assert "seal_not_active" in refused
