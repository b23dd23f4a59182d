"""``trustctl seals``: the seal lifecycle (apply, approve, make, suspend, resume, revoke),
listing, stamping and verification.

Acts directly on the configured database as ``trustctl:<user>`` (the name the audit log
records and the approval rule compares: the user who applied cannot approve). The HTTP
equivalent is ``/v1/seals``. Errors exit 2; ``verify`` exits 0 only when every check
passed, 1 otherwise.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.keys import EXIT_ERROR
from api.cli.tokens import actor
from api.cli.tsa import services

if TYPE_CHECKING:
    from seals.registry import SealRecord
    from seals.service import RevocationInput
    from seals.verify import VerificationResult

app = typer.Typer(
    help="Electronic seals: lifecycle, stamping and verification.", no_args_is_help=True
)

EsidArg = Annotated[str, typer.Argument(help="the seal's esID")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]
ReasonOpt = Annotated[str | None, typer.Option(help="why (kept in the status history)")]
_Readable = {"exists": True, "dir_okay": False, "readable": True}
# Revocation data for certificates from other CAs (the service's own: its CA's records).
CrlOpt = Annotated[
    list[Path] | None, typer.Option("--crl", help="a CRL, DER or PEM (repeatable)", **_Readable)
]
OcspOpt = Annotated[
    list[Path] | None,
    typer.Option("--ocsp", help="an OCSP response, DER (repeatable)", **_Readable),
]
ModeOpt = Annotated[
    str, typer.Option(help="soft-fail, hard-fail, require or none: what missing data means")
]


def _revocation(crl: list[Path] | None, ocsp: list[Path] | None, mode: str) -> RevocationInput:
    from seals.service import RevocationInput
    from trust.validation import RevocationMode

    try:
        parsed = RevocationMode(mode)
    except ValueError:
        raise typer.BadParameter(
            "--revocation-mode: soft-fail, hard-fail, require or none"
        ) from None
    return RevocationInput(
        tuple(p.read_bytes() for p in crl or ()), tuple(p.read_bytes() for p in ocsp or ()), parsed
    )


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise typer.BadParameter(f"{text!r} needs a time zone (e.g. Z or +08:00)")
    return value


def _show(records: list[SealRecord], as_json: bool, *, many: bool = False) -> None:
    from api.routers.seals import SealModel
    from trust.clock import SystemClock

    now = SystemClock().now()
    models = [SealModel.of(r, now) for r in records]
    if as_json:
        dumped = [m.model_dump(mode="json") for m in models]
        typer.echo(json.dumps({"seals": dumped} if many else dumped[0], ensure_ascii=False))
        return
    for m in models:
        typer.echo(
            f"{m.esid}  {m.status_now:9}  {m.type:9}  {m.valid_from.date()}..{m.valid_to.date()}"
            f"  {m.name}  ({m.organization})"
        )


@app.command()
def apply(
    seal_type: Annotated[str, typer.Option("--type", help="official, contract, ... (settings)")],
    name: Annotated[str, typer.Option(help="the seal's name")],
    organization: Annotated[str, typer.Option(help="the owning organisation")],
    image: Annotated[Path, typer.Option(help="the picture, PNG or SVG", **_Readable)],
    width: Annotated[int, typer.Option(help="width in mm")],
    height: Annotated[int, typer.Option(help="height in mm")],
    valid_from: Annotated[str, typer.Option(help="ISO 8601 with zone")],
    valid_to: Annotated[str, typer.Option(help="ISO 8601 with zone")],
    signer_cert: Annotated[
        list[Path] | None, typer.Option(help="a signer certificate, PEM or DER (repeatable)")
    ] = None,
    signer_sm3: Annotated[
        list[str] | None, typer.Option(help="or SM3 of a signer certificate, hex (repeatable)")
    ] = None,
    esid: Annotated[str | None, typer.Option(help="the esID; default a random one")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply for a seal (status applied)."""
    from seals.service import ApplyRequest
    from trust.validation.certs import load_certificates

    certs = tuple(load_certificates(p.read_bytes())[0].dump() for p in signer_cert or [])
    try:
        digests = tuple(bytes.fromhex(h) for h in signer_sm3 or [])
    except ValueError:
        raise typer.BadParameter("--signer-sm3 takes hexadecimal digests") from None
    kind = "SVG" if image.suffix.lower() == ".svg" else "PNG"
    request = ApplyRequest(
        seal_type=seal_type,
        name=name,
        organization=organization,
        picture=image.read_bytes(),
        picture_type=kind,
        width_mm=width,
        height_mm=height,
        valid_start=_time(valid_from),
        valid_end=_time(valid_to),
        signer_certificates=certs,
        signer_certificate_sm3=digests,
        esid=esid,
    )
    with services() as built:
        record = built.seals().apply(request, actor=actor())
    _show([record], as_json)


@app.command()
def approve(esid: EsidArg, as_json: JsonOpt = False) -> None:
    """Approve a seal (by a seal officer other than the applicant)."""
    with services() as built:
        record = built.seals().approve(esid, actor=actor())
    _show([record], as_json)


@app.command()
def make(
    esid: EsidArg,
    out: Annotated[Path | None, typer.Option(help="write the .esl (DER) here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an approved seal: the seal maker signs it; it is active from its validity start."""
    with services() as built:
        record = built.seals().make(esid, actor=actor())
    if out is not None and record.eseal is not None:
        out.write_bytes(record.eseal)
    _show([record], as_json)


@app.command("list")
def list_seals(
    status: Annotated[str | None, typer.Option(help="only seals in this status")] = None,
    organization: Annotated[str | None, typer.Option(help="only this organisation's")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List seals."""
    with services() as built:
        records = built.seals().list_seals(status=status, organization=organization, limit=500)
    _show(records, as_json, many=True)


@app.command()
def show(
    esid: EsidArg,
    out: Annotated[Path | None, typer.Option(help="write the .esl (DER) here")] = None,
    history: Annotated[bool, typer.Option(help="print the status history too")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a seal (and its status history)."""
    with services() as built:
        record = built.seals().get(esid)
        changes = built.seals().history(esid) if history else []
    if out is not None:
        if record.eseal is None:
            typer.echo(f"error: seal {esid} has not been made", err=True)
            raise typer.Exit(EXIT_ERROR)
        out.write_bytes(record.eseal)
    _show([record], as_json)
    for c in changes:
        line = f"  {c.seq:3}  {c.at.isoformat()}  {c.status:9}  {c.actor}  {c.reason or ''}"
        typer.echo(line.rstrip())


def _transition(operation: str, esid: str, reason: str | None, as_json: bool) -> None:
    with services() as built:
        record = getattr(built.seals(), operation)(esid, actor=actor(), reason=reason)
    _show([record], as_json)


@app.command()
def suspend(esid: EsidArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Suspend an active seal."""
    _transition("suspend", esid, reason, as_json)


@app.command()
def resume(esid: EsidArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Resume a suspended seal."""
    _transition("resume", esid, reason, as_json)


@app.command()
def revoke(esid: EsidArg, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a seal (final)."""
    _transition("revoke", esid, reason, as_json)


@app.command()
def stamp(
    esid: EsidArg,
    signer: Annotated[str, typer.Option(help="the signer (sgn_...) the seal lists")],
    out: Annotated[Path, typer.Option(help="write the SES_Signature (DER) here")],
    property_info: Annotated[str, typer.Option(help="what the stamp protects (ASCII)")],
    data: Annotated[Path | None, typer.Option(help="the data to protect", **_Readable)] = None,
    sm3_hex: Annotated[str | None, typer.Option("--sm3", help="or its SM3, hex")] = None,
    timestamp: Annotated[bool, typer.Option(help="add a timestamp from the TSA")] = False,
    crl: CrlOpt = None,
    ocsp: OcspOpt = None,
    revocation_mode: ModeOpt = "soft-fail",
) -> None:
    """Stamp data with a seal: an SES_Signature (GB/T 38540 v4). A signer certificate
    from another CA is checked against --crl / --ocsp under --revocation-mode."""
    from keystore import Actor
    from seals.service import StampRequest

    if (data is None) == (sm3_hex is None):
        raise typer.BadParameter("give exactly one of --data and --sm3")
    try:
        digest = None if sm3_hex is None else bytes.fromhex(sm3_hex)
    except ValueError:
        raise typer.BadParameter("--sm3 takes a hexadecimal digest") from None
    request = StampRequest(
        esid=esid,
        signer_id=signer,
        property_info=property_info,
        data=None if data is None else data.read_bytes(),
        data_sm3=digest,
        timestamp=timestamp,
        revocation=_revocation(crl, ocsp, revocation_mode),
    )
    with services() as built:
        result = built.seals().stamp(request, Actor(actor()))
    out.write_bytes(result.signature)
    typer.echo(f"stamped with seal {esid} at {result.signing_time.isoformat()} -> {out}")
    status = result.signer_revocation
    typer.echo(f"signer certificate revocation: {status.state} ({status.source})")


@app.command()
def verify(
    file: Annotated[
        Path, typer.Argument(help="an SES_Signature, or a seal with --seal", **_Readable)
    ],
    data: Annotated[Path | None, typer.Option(help="the signed data", **_Readable)] = None,
    seal: Annotated[bool, typer.Option("--seal", help="FILE is a seal (.esl)")] = False,
    crl: CrlOpt = None,
    ocsp: OcspOpt = None,
    revocation_mode: ModeOpt = "soft-fail",
    as_json: JsonOpt = False,
) -> None:
    """Verify a stamp (or a seal) with the service's anchors and registry; certificates
    from other CAs are checked against --crl / --ocsp under --revocation-mode."""
    from api.routers.seals import SealReport

    content = file.read_bytes()
    revocation = _revocation(crl, ocsp, revocation_mode)
    with services() as built:
        verifier = built.seal_verifier()
        result: VerificationResult = (
            verifier.verify_seal(content, revocation=revocation)
            if seal
            else verifier.verify_signature(
                content,
                original=None if data is None else data.read_bytes(),
                revocation=revocation,
            )
        )
    report = SealReport.of("seal" if seal else "seal_signature", result)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False))
    else:
        typer.echo(f"{report.indication}  {report.sub_indication or ''}".rstrip())
        for c in report.checks:
            sub = f" [{c.sub_indication}]" if c.sub_indication else ""
            typer.echo(f"  {c.name:24} {c.status:14}{sub} {c.message}")
    raise typer.Exit(0 if report.indication == "passed" else 1)
