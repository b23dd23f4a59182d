"""Audit checkpoints signed with the key store's audit key: made by ``trustctl init``,
used by CLI appends and ``trustctl audit checkpoint``, checked by ``trustctl audit
verify`` with the key store or with exported public keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.test_audit_cli import pem_file
from tests.test_cli_keys import cli as cli  # noqa: F401  (the fixture)
from tests.test_cli_keys import run
from trust.audit import AuditLog
from trust.clock import FakeClock
from trust.db import Database
from trust.keys import SM2PrivateKey
from trust.settings import Settings, get_settings


def test_checkpoints_signed_by_the_init_audit_key(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUST_AUDIT_CHECKPOINT_EVERY", "3")
    made = run(cli, "init", "--no-default-ca").stdout
    assert "audit key key_" in made and "created" in made
    audit_key = made.split("audit key ")[1].split()[0]
    assert f"audit key {audit_key} already exists" in run(cli, "init", "--no-default-ca").stdout
    shown = json.loads(run(cli, "keys", "show", audit_key, "--json").stdout)
    assert (shown["purpose"], shown["algorithm"]) == ("audit", "SM2")
    for _ in range(4):  # CLI key operations append; every third record is checkpointed
        run(cli, "keys", "create", "--algorithm", "SM2", "--label", "k")
    run(cli, "keys", "rotate", audit_key)  # later checkpoints: version 2; earlier ones verify
    run(cli, "keys", "create", "--algorithm", "SM2", "--label", "k")
    assert "signed by keystore:" + audit_key in run(cli, "audit", "checkpoint").stdout

    db = Database(Settings(var_dir=tmp_path / "var").effective_database_url)
    checkpoints = AuditLog(db, FakeClock()).checkpoints()
    assert len(checkpoints) >= 3
    assert {c.key_id for c in checkpoints} == {"keystore:" + audit_key}
    out = run(cli, "audit", "verify").stdout
    assert f"{len(checkpoints)} checkpoints (signatures checked with the key store's" in out

    # Independent trust: the public keys exported once, kept away from the database.
    pems = []
    for version in (1, 2):
        pem = tmp_path / f"audit-v{version}.pem"
        run(cli, "keys", "export-public", audit_key, "--version", str(version), "--out", str(pem))
        pems += ["--public-key", str(pem)]
    assert "checked with the public keys given" in run(cli, "audit", "verify", *pems).stdout
    only_v1 = run(cli, "audit", "verify", *pems[:2], code=1)
    assert "checkpoint signature" in only_v1.stderr
    stranger = pem_file(tmp_path, SM2PrivateKey.generate())
    run(cli, "audit", "verify", "--public-key", stranger, code=1)

    # A forged checkpoint signature is caught by the key store's verifier too.
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_checkpoint SET signature = :s WHERE seq = :q"),
            {"s": checkpoints[0].signature[:-1] + b"\x00", "q": checkpoints[0].seq},
        )
    db.dispose()
    broken = run(cli, "audit", "verify", code=1)
    assert f"BROKEN at sequence {checkpoints[0].seq}" in broken.stderr


def test_checkpoint_needs_an_audit_key(cli: CliRunner) -> None:
    run(cli, "init", "--no-default-ca")
    db = Database(get_settings().effective_database_url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE keystore_key SET state = 'suspended' WHERE purpose = 'audit'"))
    db.dispose()
    assert "no active audit key" in run(cli, "audit", "checkpoint", code=2).stderr


def test_api_processes_sign_checkpoints_with_the_audit_key(cli: CliRunner, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    made = run(cli, "init", "--no-default-ca").stdout
    audit_key = made.split("audit key ")[1].split()[0]
    settings = Settings(var_dir=tmp_path / "var", audit_checkpoint_every=2)
    token = (tmp_path / "var" / "admin.token").read_text().strip()
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            r = client.post(
                "/v1/tokens",
                json={"grants": [{"role": "signer"}], "label": "checkpointed"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201, r.text
    db = Database(settings.effective_database_url)
    log = AuditLog(db, FakeClock())
    assert {c.key_id for c in log.checkpoints()} == {"keystore:" + audit_key}
    db.dispose()
    assert "signatures checked with the key store's" in run(cli, "audit", "verify").stdout
