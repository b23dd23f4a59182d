"""``trustctl ca``: create and list CAs, issue and revoke certificates, write CRLs.

Acts directly on the configured database as ``trustctl:<user>`` (the name the audit
log records); CA keys live in the key store under the CA's own principal, as they do
for the HTTP API (``/v1/cas``). Errors exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from api.cli.keys import EXIT_ERROR
from api.cli.tokens import actor
from api.routers.ca import CaModel, CertificateModel, IssueResponse
from ca.crl import RevocationReason
from ca.service import CaInfo, CertificateAuthority
from trust.errors import TrustError
from trust.keys import KeyAlgorithm

app = typer.Typer(
    help="Create CAs, issue and revoke certificates, write CRLs.", no_args_is_help=True
)

CaIdArg = Annotated[str, typer.Argument(help="the CA's id (ca_...)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


@contextmanager
def certificate_authority() -> Iterator[CertificateAuthority]:
    """The configured CA over the configured key store; TrustErrors exit 2."""
    # Imported here so that `trustctl --help` does not load the storage stack.
    from ca.keystore_source import build_certificate_authority
    from keystore import build_keystore
    from trust import migrations
    from trust.audit import AuditLog
    from trust.clock import SystemClock
    from trust.coordination import build_coordination
    from trust.db import Database
    from trust.keys import configure_sm2_backend
    from trust.settings import get_settings

    try:
        settings = get_settings()
        configure_sm2_backend(settings.sm2_backend, settings.libcrypto_path)
        db = Database(settings.effective_database_url)
        clock = SystemClock()
        coordination = build_coordination(settings, clock)
        try:
            migrations.check_current(db)
            audit = AuditLog(db, clock, checkpoint_every=settings.audit_checkpoint_every)
            store = build_keystore(
                settings, db, clock=clock, audit=audit, coordination=coordination
            )
            try:
                authority = build_certificate_authority(
                    settings, db, store, clock, audit, coordination
                )
                try:
                    yield authority
                finally:
                    authority.close()
            finally:
                store.close()
        finally:
            coordination.close()
            db.dispose()
    except TrustError as exc:
        typer.echo(f"error ({exc.code}): {exc.detail}", err=True)
        raise typer.Exit(EXIT_ERROR) from None


def ensure_default_cas() -> None:
    """``trustctl init``: the default SM2 and ECDSA hierarchies, made once."""
    from ca.service import ensure_default_hierarchy
    from trust.settings import get_settings

    with certificate_authority() as authority:
        before = {c.id for c in authority.list_cas()}
        cas = ensure_default_hierarchy(authority, get_settings())
    for info in cas:
        typer.echo(f"{'existing' if info.id in before else 'created '} CA {_line(info)}")


def _line(info: CaInfo) -> str:
    parent = f"  under {info.parent_id}" if info.parent_id else "  (root)"
    return f"{info.id}  {info.algorithm:10}  {info.name}{parent}"


def _show_ca(info: CaInfo, as_json: bool) -> None:
    if as_json:
        typer.echo(CaModel.of(info).model_dump_json())
        return
    typer.echo(_line(info))
    typer.echo(f"  subject  {info.subject}\n  serial   {info.serial_hex}")
    typer.echo(f"  valid    {info.not_before.isoformat()} .. {info.not_after.isoformat()}")
    typer.echo(f"  key      {info.key_id}")


def _subject(text: str | None) -> dict[str, str] | None:
    """``C=CN,O=Example,CN=Zhang San`` (commas inside values are not supported)."""
    if text is None:
        return None
    parts = [p.partition("=") for p in text.split(",") if p.strip()]
    if not parts or any(not sep or not k.strip() for k, sep, _ in parts):
        raise typer.BadParameter("use attribute=value pairs separated by commas")
    return {k.strip(): v.strip() for k, _, v in parts}


SubjectOpt = Annotated[
    str | None, typer.Option(help="attribute=value pairs, e.g. 'C=CN,O=Example,CN=Name'")
]
ValidityOpt = Annotated[int | None, typer.Option(min=1, help="days (default: the profile's)")]


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="the CA's unique name")],
    algorithm: Annotated[KeyAlgorithm, typer.Option(help="key algorithm")] = KeyAlgorithm.SM2,
    parent: Annotated[str | None, typer.Option(help="root CA id; omit for a root")] = None,
    subject: SubjectOpt = None,
    validity_days: ValidityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a root CA, or an issuing CA under a root (key made in the key store)."""
    from ca.service import CreateCaRequest

    request = CreateCaRequest(name, algorithm, parent, _subject(subject), validity_days)
    with certificate_authority() as authority:
        info = authority.create_ca(request, actor=actor())
    _show_ca(info, as_json)


@app.command("list")
def list_cas(as_json: JsonOpt = False) -> None:
    """List CAs."""
    with certificate_authority() as authority:
        cas = authority.list_cas()
    if as_json:
        typer.echo(json.dumps({"cas": [CaModel.of(c).model_dump(mode="json") for c in cas]}))
        return
    for info in cas:
        typer.echo(_line(info))


@app.command()
def show(ca_id: CaIdArg, as_json: JsonOpt = False) -> None:
    """Show one CA."""
    with certificate_authority() as authority:
        info = authority.get_ca(ca_id)
    _show_ca(info, as_json)


@app.command()
def rollover(
    ca_id: CaIdArg,
    validity_days: ValidityOpt = None,
    links_out: Annotated[
        Path | None, typer.Option(help="write the two link certificates here (PEM)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a CA a new key and certificate; the old key keeps serving what it issued."""
    from api.routers.ca import RolloverResponse

    with certificate_authority() as authority:
        result = authority.rollover(ca_id, validity_days=validity_days, actor=actor())
    response = RolloverResponse.of(result)
    if links_out is not None:
        links_out.write_text((response.new_with_old_pem or "") + (response.old_with_new_pem or ""))
    if as_json:
        typer.echo(response.model_dump_json())
    else:
        _show_ca(result.ca, False)
        typer.echo(f"rolled over from key generation {result.previous_generation}")


@app.command()
def issue(
    ca_id: CaIdArg,
    csr: Annotated[Path, typer.Option(help="PKCS#10 request, PEM or DER", exists=True)],
    profile: Annotated[str, typer.Option(help="certificate profile, e.g. person, server")],
    subject: SubjectOpt = None,
    san: Annotated[
        list[str] | None, typer.Option(help="kind:value, e.g. dns:www.example.cn (repeatable)")
    ] = None,
    validity_days: ValidityOpt = None,
    out: Annotated[Path | None, typer.Option(help="also write the certificate PEM here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a certificate from a certificate request."""
    from ca.issue import IssueRequest

    request = IssueRequest(
        ca_id=ca_id,
        profile=profile,
        csr=csr.read_bytes(),
        subject=_subject(subject),
        san=san,
        validity_days=validity_days,
    )
    with certificate_authority() as authority:
        result = authority.issue(request, actor=actor())
    if out is not None:
        out.write_text(result.certificate_pem)
    if as_json:
        typer.echo(IssueResponse.of(result).model_dump_json())
    else:
        typer.echo(f"issued {result.serial_hex} until {result.not_after.isoformat()}")
        if out is None:
            typer.echo(result.certificate_pem, nl=False)


@app.command()
def revoke(
    serial_hex: Annotated[str, typer.Argument(help="the certificate's serial, hex")],
    reason: Annotated[
        RevocationReason, typer.Option(help="certificate_hold suspends it")
    ] = RevocationReason.UNSPECIFIED,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a certificate; the next CRL and OCSP answers show it."""
    with certificate_authority() as authority:
        info = authority.revoke(serial_hex, reason, actor=actor())
    if as_json:
        typer.echo(CertificateModel.of(info).model_dump_json())
    else:
        typer.echo(f"{info.serial_hex}  {info.status}  {info.revocation_reason}")


@app.command()
def crl(
    ca_id: Annotated[str | None, typer.Argument(help="the CA's id (ca_...)")] = None,
    out: Annotated[Path | None, typer.Option(help="write DER here; default PEM to stdout")] = None,
    new: Annotated[
        bool, typer.Option("--new", help="sign a new CRL even if one is current")
    ] = False,
    issue: Annotated[
        bool,
        typer.Option(
            "--issue",
            help="run the CRL schedule once: sign every CA's CRL that is due (no CA id)",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The CA's CRL: the current one, or a freshly signed one with --new; --issue signs
    whatever the schedule would (what a cron job or a server's background task runs)."""
    from asn1crypto import pem

    if issue:
        if ca_id is not None or new or out is not None:
            raise typer.BadParameter("--issue takes no CA id, --new or --out")
        _issue_due_crls(as_json)
        return
    if ca_id is None:
        raise typer.BadParameter("give a CA id, or --issue")
    with certificate_authority() as authority:
        der = authority.crl(ca_id, actor=actor()).der if new else authority.current_crl(ca_id)
    if out is None:
        typer.echo(pem.armor("X509 CRL", der).decode("ascii"), nl=False)
    else:
        out.write_bytes(der)
        typer.echo(f"CRL of {ca_id} written to {out}", err=True)


def _issue_due_crls(as_json: bool) -> None:
    from datetime import timedelta

    from ca.crl_schedule import CrlSchedule
    from trust.coordination import build_coordination
    from trust.settings import get_settings

    settings = get_settings()
    with certificate_authority() as authority:
        coordination = build_coordination(settings)
        try:
            overlap = timedelta(hours=settings.ca_crl_overlap_hours)
            issued = CrlSchedule(authority, coordination, overlap).run_once(actor=actor())
        finally:
            coordination.close()
    if as_json:
        typer.echo(json.dumps({"issued": issued}))
    else:
        for ca_id in issued:
            typer.echo(f"CRL of {ca_id} issued")
        if not issued:
            typer.echo("no CRL was due", err=True)
