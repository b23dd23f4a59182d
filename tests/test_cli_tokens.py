"""trustctl init (first admin token), tokens create/list/revoke, status."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from trust.settings import get_settings


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("TRUST_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TRUST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TRUST_REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout


def test_init_creates_admin_token_once(cli: CliRunner, tmp_path: Path) -> None:
    out = run(cli, "init")
    path = tmp_path / "var" / "admin.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert token.startswith("trst_")
    assert str(path) in out and token not in out and token.split("_", 2)[2] not in out
    out = run(cli, "init")
    assert "already exists" in out and path.read_text().strip() == token
    listed = json.loads(run(cli, "tokens", "list", "--json"))["tokens"]
    assert [t["grants"][0]["role"] for t in listed] == ["admin"]
    assert token not in json.dumps(listed)


def test_tokens_create_list_revoke(cli: CliRunner) -> None:
    run(cli, "init")
    created = json.loads(
        run(
            cli,
            "tokens",
            "create",
            "--role",
            "signer",
            "--resource",
            "K1",
            "--resource",
            "K2",
            "--expires-in",
            "30d",
            "--label",
            "invoices",
            "--json",
        )
    )
    assert created["grants"] == [
        {"role": "signer", "resource_type": "key", "resource_ids": ["K1", "K2"]}
    ]
    assert created["token"].startswith(f"trst_{created['id']}_")
    assert (
        created["expires_at"] and created["status"] == "active" and created["label"] == "invoices"
    )

    plain = cli.invoke(app, ["tokens", "create", "--role", "auditor"])
    assert plain.exit_code == 0
    assert plain.stdout.strip().startswith("trst_") and len(plain.stdout.strip().splitlines()) == 1
    assert "shown only now" in plain.stderr

    listed = {t["id"]: t for t in json.loads(run(cli, "tokens", "list", "--json"))["tokens"]}
    assert len(listed) == 3 and "token" not in listed[created["id"]]
    revoked = json.loads(run(cli, "tokens", "revoke", created["id"], "--json"))
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    assert created["id"] in run(cli, "tokens", "list")
    assert "revoked" in run(cli, "tokens", "list")
    run(cli, "tokens", "revoke", "ffffffffffff", code=2)


def test_tokens_create_refuses_bad_input(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "tokens", "create", "--role", "signer", "--expires-in", "soon", code=2)
    run(cli, "tokens", "create", "--role", "nobody", code=2)
    run(cli, "tokens", "create", "--role", "auditor", "--resource", "x", code=2)  # no default type


def test_tokens_refuse_unmigrated_database(cli: CliRunner) -> None:
    result = cli.invoke(app, ["tokens", "list"])
    assert result.exit_code == 2 and "trustctl init" in result.stderr


def test_status(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    pending = cli.invoke(app, ["status", "--json"])
    assert pending.exit_code == 1
    assert json.loads(pending.stdout)["checks"]["migrations"]["pending"]
    run(cli, "init")
    doc = json.loads(run(cli, "status", "--json"))
    assert doc["ok"] and doc["checks"]["database"]["dialect"] == "sqlite"
    assert doc["checks"]["redis"] == {"ok": True, "configured": False}
    assert doc["checks"]["sm2"]["backend"] in doc["checks"]["sm2"]["available"]
    assert "up to date" in run(cli, "status")
    monkeypatch.setenv("TRUST_REDIS_URL", "redis://:pw@127.0.0.1:1/0")
    get_settings.cache_clear()
    down = cli.invoke(app, ["status", "--json"])
    assert down.exit_code == 1
    redis = json.loads(down.stdout)["checks"]["redis"]
    assert not redis["ok"] and "pw" not in redis["url"]
