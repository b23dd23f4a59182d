"""``trustctl audit``: verify and read the tamper-evident audit log, sign a checkpoint.

Checkpoints are signed with the key store's audit key (purpose ``audit``, made by
``trustctl init``). ``verify --public-key`` trusts the public keys given (export them
with ``trustctl keys export-public`` and keep them apart from the database); without
it, checkpoints are checked against the audit key as the key store in the same
database holds it, which someone able to rewrite the database could replace too.

Exit codes of ``verify``: 0 the log is intact, 1 it is broken (the message names
the first sequence number out of place), 2 it could not be checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from trust.errors import TrustError
from trust.settings import Settings

if TYPE_CHECKING:
    from keystore import KeyStore
    from trust.audit import CheckpointVerifier, VerifyReport
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


@contextmanager
def _keystore(db: Database) -> Iterator[KeyStore | None]:
    """The configured key store over ``db``, or None (with a warning) when it cannot be
    opened here, e.g. on an auditor's machine without the master key."""
    from keystore import build_keystore
    from trust.audit import AuditLog
    from trust.clock import SystemClock

    clock = SystemClock()
    try:
        store = build_keystore(Settings(), db, clock=clock, audit=AuditLog(db, clock))
    except TrustError as exc:
        typer.echo(f"warning: key store unavailable ({exc.detail})", err=True)
        yield None
        return
    try:
        yield store
    finally:
        store.close()


@app.command()
def verify(
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            "-k",
            help="trusted checkpoint signer public key (SubjectPublicKeyInfo, PEM or DER); "
            "repeatable. Without one, checkpoint signatures are checked against the key "
            "store's audit key when the key store can be opened here.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Walk the whole chain and its checkpoints; exit 0 if intact, 1 if broken, 2 if unchecked."""
    from keystore import KeystoreCheckpointVerifier, audit_key_id
    from trust.audit import SM2CheckpointVerifier
    from trust.keys import load_public_key

    verifier: CheckpointVerifier | None = None
    source = "the public keys given"
    if public_key:
        try:
            verifier = SM2CheckpointVerifier.from_public_keys(
                load_public_key(p.read_bytes()) for p in public_key
            )
        except TrustError as exc:
            typer.echo(f"error: checkpoint key: {exc.detail}", err=True)
            raise typer.Exit(EXIT_UNCHECKED) from None
    console = Console(stderr=True)
    with _database() as db, _keystore(db) if verifier is None else nullcontext() as store:
        if store is not None and audit_key_id(store) is not None:
            verifier = KeystoreCheckpointVerifier(store)
            source = "the key store's audit key"
        report = _verify(db, verifier, console)
    if report.problem is not None:
        typer.echo(f"audit log BROKEN at {report.problem}", err=True)
        raise typer.Exit(EXIT_BROKEN)
    signatures = (
        f"signatures checked with {source}"
        if report.signatures_checked
        else "signatures NOT checked"
    )
    typer.echo(
        f"audit log intact: {report.records} records, "
        f"{report.checkpoints} checkpoints ({signatures})"
    )
    if not report.signatures_checked and report.checkpoints:
        typer.echo("warning: pass --public-key to check checkpoint signatures", err=True)


def _verify(db: Database, verifier: CheckpointVerifier | None, console: Console) -> VerifyReport:
    from trust.audit import AuditLog
    from trust.clock import SystemClock

    with Progress(
        TextColumn("verifying audit log"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("verify", total=None)
        return AuditLog(db, SystemClock(), verifier=verifier).verify(
            progress=lambda done, total: bar.update(task, completed=done, total=total)
        )


@app.command()
def checkpoint() -> None:
    """Sign a checkpoint at the log's head now with the key store's audit key (appends
    sign one every TRUST_AUDIT_CHECKPOINT_EVERY records by themselves)."""
    from keystore import sign_checkpoints
    from trust.audit import AuditLog
    from trust.clock import SystemClock

    with _database() as db, _keystore(db) as store:
        log = AuditLog(db, SystemClock())
        if store is None or sign_checkpoints(store, log) is None:
            typer.echo("error: no active audit key; `trustctl init` makes one", err=True)
            raise typer.Exit(EXIT_UNCHECKED)
        try:
            made = log.checkpoint()
        except TrustError as exc:
            typer.echo(f"error ({exc.code}): {exc.detail}", err=True)
            raise typer.Exit(EXIT_UNCHECKED) from None
    if made is None:
        typer.echo("the audit log is empty; nothing to sign")
    else:
        typer.echo(f"checkpoint at {made.seq} signed by {made.key_id}")


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
