"""``trustctl audit verify|tail`` against a real database named by TRUST_DATABASE_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli.main import app
from trust import migrations
from trust.audit import AuditLog, SM2CheckpointSigner
from trust.clock import FakeClock
from trust.db import Database
from trust.keys import SM2PrivateKey

runner = CliRunner()


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture
def filled(database_url, key):
    """A migrated database with 10 records and checkpoints at 4 and 8."""
    db = Database(database_url)
    migrations.upgrade(db)
    log = AuditLog(db, FakeClock(), signer=SM2CheckpointSigner(key), checkpoint_every=4)
    for i in range(1, 11):
        log.append("alice", "key.sign", target=f"key/{i}", request_id=f"r{i}", details={"i": i})
    yield database_url, db
    db.dispose()


def trustctl(url: str, *args: str):
    return runner.invoke(app, ["audit", *args], env={"TRUST_DATABASE_URL": url})


def pem_file(tmp_path: Path, key: SM2PrivateKey) -> str:
    path = tmp_path / "checkpoint.pub.pem"
    path.write_bytes(key.public_key().public_bytes_spki(pem=True))
    return str(path)


def test_verify_intact_log_with_trusted_key(filled, key, tmp_path):
    url, _db = filled
    result = trustctl(url, "verify", "--public-key", pem_file(tmp_path, key))
    assert result.exit_code == 0, result.output
    assert "intact: 10 records, 2 checkpoints (signatures checked with the public keys given)" in (
        result.output
    )


def test_verify_without_key_says_signatures_unchecked(filled):
    url, _db = filled
    result = trustctl(url, "verify")
    assert result.exit_code == 0, result.output
    assert "signatures NOT checked" in result.output
    assert "--public-key" in result.output


def test_verify_names_the_tampered_sequence(filled, key, tmp_path):
    url, db = filled
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_record SET actor = 'mallory' WHERE seq = 3"))
    result = trustctl(url, "verify", "-k", pem_file(tmp_path, key))
    assert result.exit_code == 1
    assert "BROKEN at sequence 3" in result.output
    assert "altered" in result.output


def test_verify_with_an_untrusted_key_fails(filled, tmp_path):
    url, _db = filled
    result = trustctl(url, "verify", "-k", pem_file(tmp_path, SM2PrivateKey.generate()))
    assert result.exit_code == 1
    assert "sequence 4" in result.output and "checkpoint signature" in result.output


def test_tail_text_and_json(filled):
    url, _db = filled
    result = trustctl(url, "tail", "-n", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "9" and "key/10" in lines[1]
    result = trustctl(url, "tail", "--lines", "3", "--json")
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.splitlines()]
    assert [e["seq"] for e in entries] == [8, 9, 10]
    assert entries[-1]["details"] == {"i": 10} and len(entries[-1]["hash"]) == 64


def test_unmigrated_database_is_refused(sqlite_url):
    result = trustctl(sqlite_url, "verify")
    assert result.exit_code == 2
    assert "trustctl init" in result.output


def test_installed_trustctl_entry_point(sqlite_url, key):
    db = Database(sqlite_url)
    migrations.upgrade(db)
    AuditLog(db, FakeClock()).append("alice", "key.sign")
    db.dispose()
    env = {**os.environ, "TRUST_DATABASE_URL": sqlite_url}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("trustctl")), "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "intact: 1 records" in done.stdout
