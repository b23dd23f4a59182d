"""``trustctl audit``: verify and read the tamper-evident audit log.

Exit codes of ``verify``: 0 the log is intact, 1 it is broken (the message names
the first sequence number out of place), 2 it could not be checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from trust.errors import TrustError
from trust.settings import Settings

if TYPE_CHECKING:
    from trust.db import Database

app = typer.Typer(help="Verify and read the tamper-evident audit log.", no_args_is_help=True)

EXIT_BROKEN = 1
EXIT_UNCHECKED = 2


@contextmanager
def _database() -> Iterator[Database]:
    """The configured database, refusing one whose schema is not migrated; errors exit 2."""
    # Imported here, as in main.py, so `trustctl --help` does not load the storage stack.
    from trust import migrations
    from trust.db import Database

    try:
        db = Database(Settings().effective_database_url)
        try:
            migrations.check_current(db)
            yield db
        finally:
            db.dispose()
    except TrustError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(EXIT_UNCHECKED) from None


@app.command()
def verify(
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            "-k",
            help="trusted checkpoint signer public key (SubjectPublicKeyInfo, PEM or DER); "
            "repeatable. Without one, checkpoint signatures are not checked.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Walk the whole chain and its checkpoints; exit 0 if intact, 1 if broken, 2 if unchecked."""
    from trust.audit import AuditLog, SM2CheckpointVerifier
    from trust.clock import SystemClock
    from trust.keys import load_public_key

    verifier = None
    if public_key:
        try:
            verifier = SM2CheckpointVerifier.from_public_keys(
                load_public_key(p.read_bytes()) for p in public_key
            )
        except TrustError as exc:
            typer.echo(f"error: checkpoint key: {exc.detail}", err=True)
            raise typer.Exit(EXIT_UNCHECKED) from None
    console = Console(stderr=True)
    with (
        _database() as db,
        Progress(
            TextColumn("verifying audit log"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bar,
    ):
        task = bar.add_task("verify", total=None)
        report = AuditLog(db, SystemClock(), verifier=verifier).verify(
            progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if report.problem is not None:
        typer.echo(f"audit log BROKEN at {report.problem}", err=True)
        raise typer.Exit(EXIT_BROKEN)
    signatures = "signatures checked" if report.signatures_checked else "signatures NOT checked"
    typer.echo(
        f"audit log intact: {report.records} records, "
        f"{report.checkpoints} checkpoints ({signatures})"
    )
    if not report.signatures_checked and report.checkpoints:
        typer.echo("warning: pass --public-key to check checkpoint signatures", err=True)


@app.command()
def tail(
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="how many records")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Show the last records, oldest first (no verification: use `verify` for that)."""
    from trust.audit import AuditLog
    from trust.clock import SystemClock

    with _database() as db:
        entries = AuditLog(db, SystemClock()).tail(lines)
    for e in entries:
        if as_json:
            typer.echo(json.dumps(e.to_dict(), ensure_ascii=False, sort_keys=True))
        else:
            typer.echo(
                f"{e.seq:>8}  {e.time}  {e.outcome:<7}  {e.actor}  {e.action}  "
                f"{e.target or '-'}  {e.request_id or '-'}  {e.details_json}"
            )
