"""``trustctl keys``: create and manage keys on the host, back up and restore the key
store, and rewrap every data key under a new master key.

Acts directly on the configured database as ``trustctl:<user>`` with the key_admin
role; the HTTP equivalent is ``/v1/keys``. Changes are broadcast to running servers
through the coordination backend (Redis); with in-process coordination a server sees
them when its key cache entry expires (``key_cache_ttl_seconds``). Errors exit 2.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.cli.tokens import actor as cli_actor
from keystore import (
    Actor,
    Algorithm,
    GenerateRequest,
    KeyInfo,
    KeyStore,
    Purpose,
    RewrapProgress,
    create_backup,
    restore_backup,
)
from trust.errors import TrustError

if TYPE_CHECKING:
    from api.routers.keys import KeyModel

app = typer.Typer(
    help="Create and manage keys; back up and restore the key store; rotate the master key.",
    no_args_is_help=True,
)

EXIT_ERROR = 2

KeyIdArg = Annotated[str, typer.Argument(help="the key's id (key_...)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]
ReasonOpt = Annotated[
    str | None,
    typer.Option("--reason", help="why (stored with the key as its state_reason, and audited)"),
]
PassFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="read the passphrase from the first line of this file",
        exists=True,
        dir_okay=False,
    ),
]
PassEnvOpt = Annotated[
    str | None,
    typer.Option("--passphrase-env", help="read the passphrase from this environment variable"),
]


def _actor() -> Actor:
    return Actor(cli_actor(), frozenset({"key_admin"}))


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except TrustError as exc:
        # The detail of a TrustError never holds secrets (passphrases, key material).
        typer.echo(f"error ({exc.code}): {exc.detail}", err=True)
        raise typer.Exit(EXIT_ERROR) from None


@contextmanager
def key_store(previous_key_files: Sequence[Path] = ()) -> Iterator[KeyStore]:
    """The configured key store; master keys in ``previous_key_files`` still unwrap."""
    # Imported here so that `trustctl --help` does not load the storage stack.
    from keystore import build_keystore, sign_checkpoints
    from keystore.kek.local import load_local_master_key
    from timestamp.registry import guard_unit_keys
    from trust import migrations
    from trust.audit import AuditLog
    from trust.clock import SystemClock
    from trust.coordination import build_coordination
    from trust.db import Database
    from trust.keys import configure_sm2_backend
    from trust.settings import get_settings

    with _errors():
        settings = get_settings()
        configure_sm2_backend(settings.sm2_backend, settings.libcrypto_path)
        previous = [load_local_master_key(p) for p in previous_key_files]
        db = Database(settings.effective_database_url)
        clock = SystemClock()
        coordination = build_coordination(settings, clock)
        try:
            migrations.check_current(db)
            audit = AuditLog(db, clock, checkpoint_every=settings.audit_checkpoint_every)
            store = build_keystore(
                settings,
                db,
                clock=clock,
                audit=audit,
                coordination=coordination,
                previous_keks=previous,
            )
            sign_checkpoints(store, audit)
            guard_unit_keys(store, db)  # a TSA unit's key is rotated by `trustctl tsa rotate`
            try:
                yield store
            finally:
                store.close()
        finally:
            coordination.close()
            db.dispose()


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """``update(done, total)``: a bar on a terminal, else one line per update on stderr
    (so logs of unattended runs show how far a long job got)."""
    console = Console(stderr=True)
    if not console.is_terminal:

        def line(done: int, total: int | None) -> None:
            typer.echo(f"{label}: {done}/{total if total is not None else '?'}", err=True)

        yield line
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _read_passphrase(file: Path | None, env: str | None, *, confirm: bool) -> str:
    if file is not None and env is not None:
        raise typer.BadParameter("give --passphrase-file or --passphrase-env, not both")
    if file is not None:
        lines = file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise typer.BadParameter(f"environment variable {env} is not set")
        return value
    # Hidden: the passphrase is never echoed, nor written anywhere.
    passphrase: str = typer.prompt(
        "backup passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return passphrase


def _model(info: KeyInfo) -> KeyModel:
    """The JSON shape of GET /v1/keys/{id}, so scripts read the CLI and the API alike."""
    # Imported on use: the HTTP models load FastAPI, which `trustctl --help` need not.
    from api.routers.keys import KeyModel

    return KeyModel.of(info)


def _show(info: KeyInfo, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_model(info).model_dump(mode="json")))
        return
    typer.echo(_line(info))
    if info.state_reason is not None:
        typer.echo(f"  reason: {info.state_reason}")
    for v in _model(info).versions:
        typer.echo(f"  version {v.version}  {v.state:9}  {v.fingerprint or '-'}")


def _line(info: KeyInfo) -> str:
    scheduled = f"  destroy after {info.destroy_after.isoformat()}" if info.destroy_after else ""
    return (
        f"{info.id}  {info.algorithm.value:10}  {info.purpose.value:7}  {info.state.value:14}  "
        f"v{info.primary_version}  [{info.label}]{scheduled}"
    )


def ensure_audit_key() -> None:
    """For ``trustctl init``: the key that signs the audit log's checkpoints (made once)."""
    from keystore import ensure_audit_key as ensure

    with key_store() as store:
        key_id, made = ensure(store, _actor())
    if made:
        typer.echo(
            f"audit key {key_id} created (signs audit checkpoints); give auditors its public "
            f"key:\n  trustctl keys export-public {key_id} --out audit-key.pem"
        )
    else:
        typer.echo(f"audit key {key_id} already exists")


# --- keys --------------------------------------------------------------------------------


@app.command()
def create(
    algorithm: Annotated[Algorithm, typer.Option(help="key algorithm")],
    label: Annotated[str, typer.Option(help="what the key is for")],
    purpose: Annotated[Purpose, typer.Option(help="what the key does")] = Purpose.SIGN,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; version 1 is made inside the key store."""
    with key_store() as store:
        info = store.generate(GenerateRequest(label, algorithm, purpose), _actor())
    _show(info, as_json)


@app.command("list")
def list_keys(as_json: JsonOpt = False) -> None:
    """List keys (never their material)."""
    with key_store() as store:
        infos = store.list_keys(_actor())
    if as_json:
        typer.echo(json.dumps({"keys": [_model(i).model_dump(mode="json") for i in infos]}))
        return
    for info in infos:
        typer.echo(_line(info))


@app.command()
def show(key_id: KeyIdArg, as_json: JsonOpt = False) -> None:
    """Show one key and its versions."""
    with key_store() as store:
        info = store.get(key_id, _actor())
    _show(info, as_json)


@app.command()
def rotate(key_id: KeyIdArg, as_json: JsonOpt = False) -> None:
    """Make a new version the primary; older versions still verify and decrypt."""
    with key_store() as store:
        info = store.rotate(key_id, _actor())
    _show(info, as_json)


@app.command()
def suspend(key_id: KeyIdArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Suspend a key: it neither signs nor decrypts until resumed."""
    with key_store() as store:
        info = store.suspend(key_id, _actor(), reason=reason)
    _show(info, as_json)


@app.command()
def resume(key_id: KeyIdArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Resume a suspended key."""
    with key_store() as store:
        info = store.resume(key_id, _actor(), reason=reason)
    _show(info, as_json)


@app.command()
def destroy(
    key_id: KeyIdArg,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedule the destruction of a deactivated or compromised key (after the waiting
    period; the public key and the record stay)."""
    if not yes:
        typer.confirm(f"schedule the destruction of {key_id}?", abort=True, err=True)
    with key_store() as store:
        info = store.schedule_destruction(key_id, _actor(), reason=reason)
    _show(info, as_json)


@app.command("export-public")
def export_public(
    key_id: KeyIdArg,
    version: Annotated[int | None, typer.Option(min=1, help="default: the primary")] = None,
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Print a version's public key (PEM SubjectPublicKeyInfo)."""
    with key_store() as store:
        result = store.public_key(key_id, version)
    if out is None:
        typer.echo(result.spki_pem.decode("ascii"), nl=False)
    else:
        out.write_bytes(result.spki_pem)
        typer.echo(f"public key of {key_id} version {result.version} written to {out}", err=True)


# --- backup and the master key -----------------------------------------------------------


@app.command()
def backup(
    out: Annotated[Path, typer.Argument(help="the bundle file to write (must not exist)")],
    passphrase_file: PassFileOpt = None,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Write an encrypted bundle of every key (scrypt + SM4-GCM under a passphrase; it does
    not depend on the master key)."""
    passphrase = _read_passphrase(passphrase_file, passphrase_env, confirm=True)
    totals = [0]  # the key count, as the progress reports it

    with key_store() as store, _progress("backing up keys") as update:

        def report(done: int, total: int) -> None:
            totals[0] = total
            update(done, total)

        bundle = create_backup(store, passphrase, _actor(), progress=report)
    _write_new(out, bundle)
    typer.echo(f"backup of {totals[0]} keys written to {out} (mode 0600)")


@app.command()
def restore(
    bundle: Annotated[Path, typer.Argument(help="a bundle from `keys backup`", exists=True)],
    passphrase_file: PassFileOpt = None,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Restore a bundle into an empty key store: same key ids, versions, states and public
    keys; the secrets are sealed anew under this store's master key."""
    data = bundle.read_bytes()
    passphrase = _read_passphrase(passphrase_file, passphrase_env, confirm=False)
    with key_store() as store, _progress("restoring keys") as update:
        count = restore_backup(store, data, passphrase, _actor(), progress=update)
    typer.echo(f"restored {count} keys from {bundle}")


@app.command("rotate-master")
def rotate_master(
    previous_key_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--previous-key-file",
            help="a master key file data keys are still wrapped under (repeatable)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="data keys per transaction")] = 500,
) -> None:
    """Rewrap every data key under the configured master key. Configure the new master key
    first (TRUST_MASTER_KEY_FILE, TRUST_MASTER_KEY or the HSM) and name the old key files
    here; the job can be interrupted and run again. Retire an old key only after this
    finishes."""
    with key_store(previous_key_file or ()) as store, _progress("rewrapping data keys") as update:

        def report(p: RewrapProgress) -> None:
            update(p.done, p.total)

        done = store.rewrap_all(report, batch_size=batch_size)
        kek_id = store.kek_ring.current.kek_id
    typer.echo(f"rewrapped {done} data keys under master key {kek_id}")


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        typer.echo(f"error: {path} exists; not overwritten", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
