"""Helpers shared by the API tests: an app on a fresh SQLite store, and tokens of given grants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from keystore.kek.local import create_local_master_key
from trust import migrations
from trust.auth import AuthService, Grant, Role
from trust.clock import FakeClock
from trust.db import Database
from trust.settings import Settings


@dataclass
class ApiEnv:
    app: FastAPI
    client: TestClient
    db: Database
    clock: FakeClock
    auth: AuthService
    settings: Settings

    def token(self, *grants: Grant, **kwargs: Any) -> str:
        return self.auth.create_token(list(grants), actor="test", **kwargs).token

    def headers(self, *grants: Grant) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*grants)}"}

    def admin(self) -> dict[str, str]:
        return self.headers(Grant(Role.admin))


def make_env(tmp_path: Path, database_url: str | None = None, **settings: Any) -> ApiEnv:
    config = Settings(var_dir=tmp_path / "var", database_url=database_url, **settings)
    if config.master_key is None and not config.effective_master_key_file.exists():
        create_local_master_key(config.effective_master_key_file)  # as trustctl init does
    db = Database(config.effective_database_url)
    migrations.upgrade(db)
    clock = FakeClock()
    app = create_app(config, database=db, clock=clock)
    auth = app.state.services.auth
    client = TestClient(app, raise_server_exceptions=False)
    return ApiEnv(app, client, db, clock, auth, config)
