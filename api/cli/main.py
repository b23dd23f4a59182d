"""``trustctl``: the administrator command line."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli import audit
from trust.settings import get_settings

app = typer.Typer(help="Administer the trust service.", no_args_is_help=True)
app.add_typer(audit.app, name="audit")


@app.command()
def init() -> None:
    """Create the embedded store under var/ (idempotent)."""
    from trust import migrations
    from trust.db import Database

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        migrations.upgrade(db)
    finally:
        db.dispose()
    typer.echo(f"initialised {settings.var_dir} (database {db.dialect}, schema up to date)")


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
        access_log=False,
        log_level=settings.log_level.lower(),
    )


def main() -> None:
    app()
