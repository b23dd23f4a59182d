"""``trustctl documents``: stamp an OFD or PDF document with a seal, sign an OFD document
(Sign-type signature, no seal), verify a sealed or signed document.

Acts on the configured database and key store as the API workers do (the seal service
checks the seal and signer; stamps are audited under ``trustctl:<user>``). Verification
uses the service's trust anchors and seal registry. Errors exit 2; ``verify`` exits 1
when the document does not verify (anything but TOTAL_PASSED).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.keys import EXIT_ERROR
from api.cli.tokens import actor
from api.cli.tsa import services

app = typer.Typer(
    help="Sealed documents (OFD, PDF): stamp with a seal, sign, verify.", no_args_is_help=True
)

_Readable = {"exists": True, "dir_okay": False, "readable": True}


def _position(value: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter("give X,Y in millimetres, e.g. 120,200") from None
    return x, y


@app.command()
def stamp(
    file: Annotated[Path, typer.Argument(**_Readable, help="the OFD document")],
    seal: Annotated[str, typer.Option("--seal", help="the seal's esID")],
    signer: Annotated[str, typer.Option("--signer", help="the signer id (sgn_...)")],
    at: Annotated[str, typer.Option("--at", help="X,Y of the stamp's top left corner, mm")],
    page: Annotated[int, typer.Option("--page", min=1, help="1-based page")] = 1,
    last_page: Annotated[
        int | None, typer.Option("--last-page", min=1, help="riding seal up to this page")
    ] = None,
    whole: Annotated[
        bool, typer.Option("--whole", help="protect the whole document: no later signatures")
    ] = False,
    timestamp: Annotated[bool, typer.Option("--timestamp", help="timestamp the stamp")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="default: FILE.stamped.ofd")
    ] = None,
) -> None:
    """Stamp FILE with seal --seal by --signer at --at on --page."""
    from keystore import Actor
    from seals.documents.ofd_sign import StampMode
    from seals.documents.service import StampDocumentRequest

    x, y = _position(at)
    request = StampDocumentRequest(
        data=file.read_bytes(),
        seal_id=seal,
        signer_id=signer,
        page=page,
        x_mm=x,
        y_mm=y,
        mode=StampMode.WHOLE if whole else StampMode.CONTINUE,
        timestamp=timestamp,
        last_page=last_page,
    )
    with services() as built:
        stamped = built.documents().stamp(request, Actor(actor()))
    target = out or file.with_suffix(".stamped" + file.suffix)
    target.write_bytes(stamped.data)
    typer.echo(f"stamped {stamped.format.value}: {target}")


@app.command()
def sign(
    file: Annotated[Path, typer.Argument(**_Readable, help="the OFD document")],
    signer: Annotated[str, typer.Option("--signer", help="the signer id (sgn_...)")],
    whole: Annotated[
        bool, typer.Option("--whole", help="protect the whole document: no later signatures")
    ] = False,
    timestamp: Annotated[bool, typer.Option("--timestamp", help="timestamp the signature")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="default: FILE.signed.ofd")
    ] = None,
) -> None:
    """Add a Sign-type signature (GM/T 0010 SignedData, no seal) by --signer to FILE."""
    from keystore import Actor
    from seals.documents.ofd_sign import StampMode
    from seals.documents.service import SignDocumentRequest

    request = SignDocumentRequest(
        data=file.read_bytes(),
        signer_id=signer,
        mode=StampMode.WHOLE if whole else StampMode.CONTINUE,
        timestamp=timestamp,
    )
    with services() as built:
        signed = built.documents().sign(request, Actor(actor()))
    target = out or file.with_suffix(".signed" + file.suffix)
    target.write_bytes(signed.data)
    typer.echo(f"signed {signed.format.value}: {target}")


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(**_Readable, help="the OFD document")],
    cert: Annotated[
        list[Path] | None,
        typer.Option(
            **_Readable, help="signer certificate for signatures that carry none (repeatable)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Verify every signature and seal in FILE and print the report."""
    from trust.validation import Indication
    from trust.validation.certs import load_certificates

    try:
        certificates = [c for path in cert or [] for c in load_certificates(path.read_bytes())]
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    with services() as built:
        report = built.documents().verify(file.read_bytes(), certificates=certificates)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(f"{report.format.value}: {report.indication.value}", nl=False)
        typer.echo(f" ({report.sub_indication.value})" if report.sub_indication else "")
        for signature in report.signatures:
            seal = f" seal {signature.seal.es_id} {signature.seal.name}" if signature.seal else ""
            typer.echo(
                f"  signature {signature.id} ({signature.type}){seal}: {signature.indication.value}"
            )
            for check in signature.checks:
                typer.echo(f"    {check.status.value:14} {check.name}: {check.message}")
        for name in report.unprotected_files:
            typer.echo(f"  unprotected: {name}")
    raise typer.Exit(0 if report.indication is Indication.TOTAL_PASSED else 1)
