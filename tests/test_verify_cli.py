"""``trustctl verify``: offline CMS verification with CRL files, signature timestamps and
evidence bundles written and read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from api.cli.main import app
from tests.validation_support import PycaPki, pyca_cms, pyca_crl, pyca_pki, pyca_tsa, stamp
from trust.clock import FakeClock
from trust.settings import get_settings

# The CLI runs on the system clock: times are relative to now.
NOW = datetime.now(UTC).replace(microsecond=0)


@cache
def pki() -> PycaPki:
    return pyca_pki("ecdsa")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("TRUST_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TRUST_TRUST_ANCHOR_FILES", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def files(tmp_path: Path, *, revoked_at: datetime | None, stamped_at: datetime) -> list[str]:
    """CMS (stamped), root, sub CA and CRL files; the arguments naming them."""
    p = pki()
    tsa, _ = pyca_tsa(p.sub, FakeClock(stamped_at))
    cms = tmp_path / "signed.p7"
    cms.write_bytes(stamp(pyca_cms(p.leaf, b"cli content"), tsa))
    root, sub = tmp_path / "root.pem", tmp_path / "sub.pem"
    root.write_bytes(p.root.cert.public_bytes(serialization.Encoding.PEM))
    sub.write_bytes(p.sub.cert.public_bytes(serialization.Encoding.PEM))
    entries = ((p.leaf, revoked_at),) if revoked_at is not None else ()
    issued = NOW - timedelta(hours=1)
    sub_crl, root_crl = tmp_path / "sub.crl", tmp_path / "root.crl"
    sub_crl.write_bytes(pyca_crl(p.sub, entries, this_update=issued))
    root_crl.write_bytes(pyca_crl(p.root, this_update=issued))
    return [str(cms), "--anchor", str(root), "--intermediate", str(sub),
            "--crl", str(sub_crl), "--crl", str(root_crl)]  # fmt: skip


def test_timestamp_before_revocation_passes_and_evidence_round_trips(
    cli: CliRunner, tmp_path: Path
) -> None:
    args = files(tmp_path, revoked_at=NOW - timedelta(days=1), stamped_at=NOW - timedelta(days=3))
    bundle = tmp_path / "evidence.json"
    result = cli.invoke(
        app, ["verify", *args, "--revocation-mode", "require", "--evidence-out", str(bundle)]
    )
    assert result.exit_code == 0, result.output
    assert "TOTAL_PASSED" in result.output and "proven signing time" in result.output
    saved = json.loads(bundle.read_text())
    assert saved["format"] == "trust-evidence/1" and len(saved["crls_b64"]) == 2
    # From the bundle alone: no --crl, no --intermediate.
    again = cli.invoke(
        app,
        ["verify", args[0], "--anchor", args[2], "--evidence", str(bundle), "--json",
         "--revocation-mode", "require"],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["time_source"] == "proven"


def test_timestamp_after_revocation_fails_and_missing_crls_try_later(
    cli: CliRunner, tmp_path: Path
) -> None:
    args = files(tmp_path, revoked_at=NOW - timedelta(days=3), stamped_at=NOW - timedelta(days=1))
    result = cli.invoke(app, ["verify", *args, "--revocation-mode", "require", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["sub_indication"] == "REVOKED_NO_POE"
    bare = cli.invoke(app, ["verify", *args[:5], "--revocation-mode", "require", "--json"])
    assert bare.exit_code == 1
    assert json.loads(bare.output)["sub_indication"] == "TRY_LATER"


def test_bad_options_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    args = files(tmp_path, revoked_at=None, stamped_at=NOW)
    assert cli.invoke(app, ["verify", *args, "--revocation-mode", "sometimes"]).exit_code == 2
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    assert cli.invoke(app, ["verify", args[0], "--evidence", str(junk)]).exit_code == 2
