"""trustctl init (master key file) and trustctl keys: create, list, show, rotate, suspend,
resume, destroy, export-public, backup -> restore into a fresh store, rotate-master."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from keystore import Actor, build_keystore
from keystore.kek.local import create_local_master_key
from trust.audit import AuditLog
from trust.clock import SystemClock
from trust.db import Database
from trust.keys import load_public_key
from trust.settings import Settings, get_settings

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    use_var(monkeypatch, tmp_path / "var")
    monkeypatch.delenv("TRUST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TRUST_REDIS_URL", raising=False)
    monkeypatch.delenv("TRUST_MASTER_KEY", raising=False)
    monkeypatch.delenv("TRUST_MASTER_KEY_FILE", raising=False)
    yield CliRunner()
    get_settings.cache_clear()


def use_var(monkeypatch: pytest.MonkeyPatch, var: Path) -> None:
    monkeypatch.setenv("TRUST_VAR_DIR", str(var))
    get_settings.cache_clear()


def run(cli: CliRunner, *args: str, code: int = 0, input: str | None = None) -> Any:
    result = cli.invoke(app, list(args), input=input)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def create(cli: CliRunner, algorithm: str = "SM2", purpose: str = "sign") -> dict[str, Any]:
    out = run(
        cli, "keys", "create", "--algorithm", algorithm, "--purpose", purpose,
        "--label", f"{algorithm} key", "--json",
    ).stdout  # fmt: skip
    return json.loads(out)


def listed(cli: CliRunner) -> list[dict[str, Any]]:
    """The keys listed, without the audit key `trustctl init` makes."""
    keys = json.loads(run(cli, "keys", "list", "--json").stdout)["keys"]
    return [k for k in keys if k["purpose"] != "audit"]


def test_init_creates_the_master_key_once(cli: CliRunner, tmp_path: Path) -> None:
    out = run(cli, "init", "--no-default-ca").stdout
    key_file = tmp_path / "var" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert str(key_file) in out and secret not in out
    out = run(cli, "init", "--no-default-ca").stdout
    assert "master key" not in out and key_file.read_text().strip() == secret


def test_init_makes_no_key_file_when_the_key_is_in_the_environment(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUST_MASTER_KEY", os.urandom(16).hex())
    get_settings.cache_clear()
    run(cli, "init", "--no-default-ca")
    assert not (tmp_path / "var" / "master.key").exists()
    assert create(cli)["state"] == "active"


def test_key_lifecycle(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init", "--no-default-ca")
    key = create(cli)
    ecdsa = create(cli, "ECDSA-P256")
    create(cli, "SM4", "encrypt")
    assert [k["id"] for k in listed(cli)][:2] == [key["id"], ecdsa["id"]]
    text = run(cli, "keys", "list").stdout
    assert key["id"] in text and "SM2" in text and "ECDSA-P256" in text

    shown = json.loads(run(cli, "keys", "show", key["id"], "--json").stdout)
    assert shown == key and key["owner"].startswith("trustctl")
    assert "version 1" in run(cli, "keys", "show", key["id"]).stdout

    rotated = json.loads(run(cli, "keys", "rotate", key["id"], "--json").stdout)
    assert rotated["primary_version"] == 2
    pem = run(cli, "keys", "export-public", key["id"]).stdout
    assert pem == rotated["versions"][1]["public_key_pem"]
    out = tmp_path / "v1.pem"
    run(cli, "keys", "export-public", key["id"], "--version", "1", "--out", str(out))
    assert load_public_key(out.read_bytes()).algorithm == "sm2"
    assert out.read_text() == rotated["versions"][0]["public_key_pem"]

    suspended = json.loads(
        run(cli, "keys", "suspend", key["id"], "--reason", "audit pending", "--json").stdout
    )
    assert (suspended["state"], suspended["state_reason"]) == ("suspended", "audit pending")
    assert "reason: audit pending" in run(cli, "keys", "show", key["id"]).stdout
    assert json.loads(run(cli, "keys", "resume", key["id"], "--json").stdout)["state"] == "active"
    tail = run(cli, "audit", "tail", "-n", "2", "--json").stdout.splitlines()
    suspension = json.loads(tail[0])
    assert suspension["action"] == "key.suspend"
    assert suspension["details"] == {"from": "active", "reason": "audit pending"}
    # Destruction is refused for an active key, naming the key store's code.
    refused = run(cli, "keys", "destroy", key["id"], "--yes", code=2)
    assert "key_destruction_needs_deactivation" in refused.stderr
    run(cli, "keys", "show", "key_nope", code=2)


def test_destroy_asks_first(cli: CliRunner) -> None:
    run(cli, "init", "--no-default-ca")
    key = create(cli)
    run(cli, "keys", "destroy", key["id"], code=1, input="n\n")


def _sign_with_store(var: Path, key_id: str) -> None:
    """Sign and verify through a key store built from the settings (no earlier master key)."""
    settings = Settings(var_dir=var)
    db = Database(settings.effective_database_url)
    try:
        clock = SystemClock()
        store = build_keystore(settings, db, clock=clock, audit=AuditLog(db, clock))
        user = Actor("app", key_grants=frozenset({key_id}))
        signed = store.sign(key_id, b"still signs", user)
        store.verify(key_id, b"still signs", signed.signature, user)
        store.close()
    finally:
        db.dispose()


def test_backup_restore_into_a_fresh_store(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(cli, "init", "--no-default-ca")
    keys = [create(cli), create(cli, "RSA-2048"), create(cli, "SM4", "encrypt")]
    run(cli, "keys", "rotate", keys[0]["id"])
    before = listed(cli)
    pass_file = tmp_path / "pass"
    pass_file.write_text(PASSPHRASE + "\n")
    bundle = tmp_path / "keys.bundle"
    result = run(cli, "keys", "backup", str(bundle), "--passphrase-file", str(pass_file))
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    assert "4 keys" in result.stdout  # with the audit key
    # One progress line per key, not just a start and an end.
    assert [f"backing up keys: {n}/4" in result.stderr for n in range(5)] == [True] * 5
    assert PASSPHRASE not in result.output
    run(cli, "keys", "backup", str(bundle), "--passphrase-file", str(pass_file), code=2)

    use_var(monkeypatch, tmp_path / "fresh")
    run(cli, "init", "--no-default-ca")
    monkeypatch.setenv("BACKUP_PASS", "wrong passphrase, long enough")
    wrong = run(cli, "keys", "restore", str(bundle), "--passphrase-env", "BACKUP_PASS", code=2)
    assert "backup_passphrase_invalid" in wrong.stderr
    # The hidden prompt: the passphrase typed is not echoed.
    restored = run(cli, "keys", "restore", str(bundle), input=PASSPHRASE + "\n")
    # The fresh store's own audit key does not stand in the way; the source's comes along.
    assert "restored 4 keys" in restored.stdout and PASSPHRASE not in restored.output
    assert [f"restoring keys: {n}/4" in restored.stderr for n in range(5)] == [True] * 5
    after = listed(cli)
    assert after == before
    assert (tmp_path / "fresh" / "master.key").read_text() != (
        tmp_path / "var" / "master.key"
    ).read_text()
    _sign_with_store(tmp_path / "fresh", keys[0]["id"])
    refused = run(cli, "keys", "restore", str(bundle), input=PASSPHRASE + "\n", code=2)
    assert "keystore_not_empty" in refused.stderr


def test_rotate_master_shows_progress_and_keys_still_sign(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init", "--no-default-ca")
    keys = [create(cli) for _ in range(5)]
    run(cli, "keys", "rotate", keys[0]["id"])  # 7 data keys with the audit key
    var = tmp_path / "var"
    old = var / "old-master.key"
    (var / "master.key").rename(old)
    create_local_master_key(var / "master.key")

    # Without the old key nothing unwraps, and the job says which master key is missing.
    missing = run(cli, "keys", "rotate-master", code=2)
    assert "not configured" in missing.stderr
    result = run(cli, "keys", "rotate-master", "--previous-key-file", str(old), "--batch-size", "4")
    assert "rewrapping data keys: 0/7" in result.stderr
    assert "rewrapping data keys: 4/7" in result.stderr
    assert "rewrapping data keys: 7/7" in result.stderr
    assert "rewrapped 7 data keys" in result.stdout
    assert "rewrapped 0 data keys" in run(cli, "keys", "rotate-master").stdout
    old.unlink()
    for key in keys:
        _sign_with_store(var, key["id"])
