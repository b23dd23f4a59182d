"""trustctl documents stamp / verify on the configured store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.deps import build_services
from seals.documents.ofd_verify import verify_ofd
from tests.ofd_support import make_ofd, ofdrw_user_certificate, sample, service_seal_env
from tests.test_cli_ca import run
from trust.clock import FakeClock
from trust.settings import get_settings


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("TRUST_VAR_DIR", str(tmp_path / "var"))
    for name in ("TRUST_DATABASE_URL", "TRUST_REDIS_URL", "TRUST_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TRUST_MASTER_KEY_FILE", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_stamp_and_verify(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    clock = FakeClock(datetime.now(UTC))  # the CLI runs on the system clock
    services = build_services(get_settings(), clock=clock)
    try:
        seals = service_seal_env(services, clock)
        signer = seals.add_signer("cli")
        esid = seals.active_seal(signer)
    finally:
        services.close()
    # The CLI's stamp has a whole-second timeInfo: stamping in the second the seal became
    # active would date the stamp before the activation.
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)
    document = tmp_path / "notice.ofd"
    document.write_bytes(make_ofd(2))
    out = run(
        cli,
        "documents",
        "stamp",
        str(document),
        "--seal",
        esid,
        "--signer",
        signer.signer_id,
        "--page",
        "2",
        "--at",
        "120,200",
    ).stdout
    stamped = tmp_path / "notice.stamped.ofd"
    assert str(stamped) in out
    (signature,) = verify_ofd(stamped.read_bytes()).signatures
    assert signature.seal is not None and signature.seal.es_id == esid

    text = run(cli, "documents", "verify", str(stamped)).stdout
    assert text.startswith("ofd: TOTAL_PASSED") and esid in text
    report = json.loads(run(cli, "documents", "verify", str(stamped), "--json").stdout)
    assert report["signatures"][0]["seal"]["es_id"] == esid

    # Whole protection, then a refused second stamp (exit 2 with the error code).
    whole = tmp_path / "closed.ofd"
    run(
        cli,
        "documents",
        "stamp",
        str(stamped),
        "--seal",
        esid,
        "--signer",
        signer.signer_id,
        "--at",
        "10,10",
        "--whole",
        "--out",
        str(whole),
    )
    refused = run(
        cli,
        "documents",
        "stamp",
        str(whole),
        "--seal",
        esid,
        "--signer",
        signer.signer_id,
        "--at",
        "10,10",
        code=2,
    )
    assert "document_protected" in refused.output


def test_verify_bare_signature_with_a_certificate(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init", "--no-default-ca")
    document = tmp_path / "DigitalSign.ofd"
    document.write_bytes(sample("DigitalSign.ofd"))
    cert = tmp_path / "user.pem"
    cert.write_bytes(ofdrw_user_certificate().dump())
    assert "INDETERMINATE" in run(cli, "documents", "verify", str(document), code=1).stdout
    run(cli, "documents", "verify", str(document), "--cert", str(cert))
    broken = tmp_path / "broken.ofd"
    broken.write_bytes(b"not a document")
    assert (
        "unsupported_document_format" in run(cli, "documents", "verify", str(broken), code=2).output
    )


def test_sign_type_signature(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    clock = FakeClock(datetime.now(UTC))
    services = build_services(get_settings(), clock=clock)
    try:
        signer = service_seal_env(services, clock).add_signer("cli")
    finally:
        services.close()
    document = tmp_path / "contract.ofd"
    document.write_bytes(make_ofd(1))
    out = run(cli, "documents", "sign", str(document), "--signer", signer.signer_id).stdout
    signed = tmp_path / "contract.signed.ofd"
    assert str(signed) in out
    (signature,) = verify_ofd(signed.read_bytes()).signatures
    assert signature.type == "Sign"
    assert run(cli, "documents", "verify", str(signed)).stdout.startswith("ofd: TOTAL_PASSED")
    refused = run(cli, "documents", "sign", str(document), "--signer", "sgn_x", code=2)
    assert "signer_not_found" in refused.output
