"""``trustctl status``: is the configured service able to run? Exit 0 when every check is ok."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from trust.errors import TrustError


def collect() -> dict[str, dict[str, Any]]:
    """One entry per component: ``ok`` (bool) plus what was found."""
    # Imported here so that `trustctl --help` does not load the storage and crypto stacks.
    from sqlalchemy.engine import make_url

    from trust import migrations
    from trust.coordination import build_coordination
    from trust.db import Database
    from trust.settings import get_settings
    from trust.sm2.select import available_backends, get_backend

    settings = get_settings()
    checks: dict[str, dict[str, Any]] = {}
    url = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    db = Database(settings.effective_database_url)
    try:
        db.ping()
        checks["database"] = {"ok": True, "dialect": db.dialect, "url": url}
        missing = sorted(migrations.pending(db))
        checks["migrations"] = {"ok": not missing, "pending": missing}
    except TrustError as exc:
        checks["database"] = {"ok": False, "url": url, "error": exc.detail}
        checks["migrations"] = {"ok": False, "error": "database unreachable"}
    finally:
        db.dispose()

    if settings.redis_url:
        redis_url = make_url(settings.redis_url).render_as_string(hide_password=True)
        coordination = build_coordination(settings)
        try:
            coordination.ping()
            checks["redis"] = {"ok": True, "url": redis_url}
        except TrustError as exc:
            checks["redis"] = {"ok": False, "url": redis_url, "error": exc.detail}
        finally:
            coordination.close()
    else:
        checks["redis"] = {"ok": True, "configured": False}

    try:
        backend = get_backend(settings.sm2_backend, settings.libcrypto_path)
        checks["sm2"] = {
            "ok": True,
            "backend": backend.name,
            "available": available_backends(settings.libcrypto_path),
        }
    except TrustError as exc:
        checks["sm2"] = {"ok": False, "error": exc.detail}
    return checks


def _line(name: str, check: dict[str, Any]) -> str:
    if not check["ok"]:
        return f"{name:11} FAILED  {check.get('error') or check}"
    if name == "database":
        return f"{name:11} ok      {check['dialect']} {check['url']}"
    if name == "migrations":
        return f"{name:11} ok      up to date"
    if name == "redis":
        where = check["url"] if check.get("url") else "not configured (in-process coordination)"
        return f"{name:11} ok      {where}"
    return f"{name:11} ok      {check['backend']} (available: {', '.join(check['available'])})"


def status(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Database, migrations, Redis and SM2 backend; exit 1 if any is not ok."""
    checks = collect()
    healthy = all(c["ok"] for c in checks.values())
    if as_json:
        typer.echo(json.dumps({"ok": healthy, "checks": checks}))
    else:
        for name, check in checks.items():
            if name == "migrations" and not check["ok"] and check.get("pending"):
                typer.echo(f"{name:11} PENDING {', '.join(check['pending'])}; run trustctl init")
            else:
                typer.echo(_line(name, check))
    if not healthy:
        raise typer.Exit(1)
