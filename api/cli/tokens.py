"""``trustctl tokens``: create, list and revoke API tokens directly in the database.

For an administrator on the host; the HTTP equivalent is ``/v1/tokens``. The
secret of a new token goes to stdout once (so it can be piped into a secret
store); everything else about it goes to stderr or the JSON document.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from trust.auth import AuthService, Grant, Role, TokenInfo
from trust.errors import TrustError

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise typer.BadParameter("use a positive number and a unit: 90s, 15m, 12h, 30d, 2w")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def actor() -> str:
    try:
        return f"trustctl:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "trustctl"


@contextmanager
def auth_service() -> Iterator[AuthService]:
    """The token service on the configured database; a TrustError in the block exits 2."""
    # Imported here so that `trustctl --help` does not load the storage stack.
    from trust import migrations
    from trust.audit import AuditLog
    from trust.clock import SystemClock
    from trust.db import Database
    from trust.settings import get_settings

    try:
        settings = get_settings()
        db = Database(settings.effective_database_url)
        try:
            migrations.check_current(db)
            clock = SystemClock()
            audit = AuditLog(db, clock, checkpoint_every=settings.audit_checkpoint_every)
            yield AuthService(db, clock, audit)
        finally:
            db.dispose()
    except TrustError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None


def token_json(info: TokenInfo, now: datetime) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "id": info.id,
        "label": info.label,
        "grants": [g.to_json() for g in info.grants],
        "status": info.status(now),
        "created_at": iso(info.created_at),
        "created_by": info.created_by,
        "expires_at": iso(info.expires_at),
        "revoked_at": iso(info.revoked_at),
        "last_used_at": iso(info.last_used_at),
    }


def _grants_text(info: TokenInfo) -> str:
    parts = []
    for g in info.grants:
        on = f" on {g.resource_type} {','.join(sorted(g.resource_ids))}" if g.resource_ids else ""
        parts.append(f"{g.role}{on}")
    return "; ".join(parts)


@app.command()
def create(
    role: Annotated[Role, typer.Option(help="the role the token holds")],
    resource: Annotated[
        list[str] | None,
        typer.Option(help="narrow the role to this resource id (repeatable)"),
    ] = None,
    resource_type: Annotated[
        str | None,
        typer.Option(help="type of the --resource ids (default: key for signer, key_admin ...)"),
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option(help="lifetime, e.g. 30d, 12h (default: never expires)")
    ] = None,
    label: Annotated[str, typer.Option(help="what the token is for")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Create a token. Its secret is printed once; store it now."""
    lifetime = parse_duration(expires_in) if expires_in else None
    with auth_service() as auth:
        grant = Grant.narrowed(role, resource, resource_type) if resource else Grant(role)
        now = auth.clock.now()
        issued = auth.create_token(
            [grant], actor=actor(), label=label, expires_at=now + lifetime if lifetime else None
        )
    if as_json:
        typer.echo(json.dumps({**token_json(issued.info, now), "token": issued.token}))
        return
    expiry = issued.info.expires_at.isoformat() if issued.info.expires_at else "never"
    typer.echo(
        f"token {issued.info.id} ({_grants_text(issued.info)}), expires {expiry}; "
        "the secret below is shown only now:",
        err=True,
    )
    typer.echo(issued.token)


@app.command("list")
def list_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """List tokens (never their secrets)."""
    with auth_service() as auth:
        infos = auth.list_tokens()
        now = auth.clock.now()
    if as_json:
        typer.echo(json.dumps({"tokens": [token_json(i, now) for i in infos]}))
        return
    for i in infos:
        expiry = i.expires_at.isoformat(timespec="seconds") if i.expires_at else "never"
        typer.echo(
            f"{i.id}  {i.status(now):8}  expires {expiry:25}  {_grants_text(i)}"
            + (f"  [{i.label}]" if i.label else "")
        )


@app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id (the part after trst_)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Revoke a token; it stops working at once. Revoking twice is not an error."""
    with auth_service() as auth:
        info = auth.revoke(token_id, actor=actor())
        now = auth.clock.now()
    if as_json:
        typer.echo(json.dumps(token_json(info, now)))
    else:
        typer.echo(f"token {info.id} revoked")
