"""``trustctl``: the administrator command line."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli import audit, ca, documents, keys, seals, sign, signers, status, tokens, tsa, verify
from trust.settings import get_settings

app = typer.Typer(help="Administer the trust service.", no_args_is_help=True)
app.add_typer(audit.app, name="audit")
app.add_typer(tokens.app, name="tokens")
app.add_typer(keys.app, name="keys")
app.add_typer(ca.app, name="ca")
app.add_typer(documents.app, name="documents")
app.add_typer(tsa.app, name="tsa")
app.add_typer(signers.app, name="signers")
app.add_typer(sign.app, name="sign")
app.add_typer(seals.app, name="seals")
app.command()(status.status)
app.command()(verify.verify)


@app.command()
def init(
    no_default_ca: Annotated[
        bool,
        typer.Option(
            "--no-default-ca", help="do not create the default CA hierarchies and TSA units"
        ),
    ] = False,
) -> None:
    """Create the embedded store under var/, the local master key (unless TRUST_MASTER_KEY
    is set or an HSM holds it), the first admin token and the default SM2 and ECDSA CA
    hierarchies with the TSA units sm2 and ecdsa (idempotent)."""
    from keystore.kek.local import create_local_master_key
    from trust import migrations
    from trust.audit import AuditLog
    from trust.auth import AuthService
    from trust.clock import SystemClock
    from trust.db import Database

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    token_file = settings.var_dir / "admin.token"
    key_file = settings.effective_master_key_file
    make_key = (
        settings.kek_provider == "local" and settings.master_key is None and not key_file.exists()
    )
    try:
        if make_key:
            create_local_master_key(key_file)
        migrations.upgrade(db)
        clock = SystemClock()
        audit_log = AuditLog(db, clock, checkpoint_every=settings.audit_checkpoint_every)
        created = AuthService(db, clock, audit_log).ensure_first_admin(token_file)
    finally:
        db.dispose()
    typer.echo(f"initialised {settings.var_dir} (database {db.dialect}, schema up to date)")
    if make_key:
        typer.echo(f"master key written to {key_file} (mode 0600); back it up, keep it secret")
    # Only the file's path is printed: the token must not end up in terminal scrollback or CI logs.
    if created:
        typer.echo(
            f"first admin token written to {token_file} (mode 0600); try:\n"
            f'  curl -H "Authorization: Bearer $(cat {token_file})" {settings.base_url}/v1/whoami'
        )
    else:
        typer.echo("an admin token already exists; no new one created")
    keys.ensure_audit_key()
    if not no_default_ca:
        ca.ensure_default_cas()
        tsa.ensure_default_units()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: TRUST_HTTP_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.asgi:app",
        host=host or settings.http_host,
        port=port or settings.http_port,
        workers=workers,
        # uvicorn's default (5 s) kills workers whose imports and start-up take longer, as
        # they do on a loaded host; the supervisor then restarts them in a loop.
        timeout_worker_healthcheck=60,
        access_log=False,
        log_level=settings.log_level.lower(),
    )


def main() -> None:
    app()
