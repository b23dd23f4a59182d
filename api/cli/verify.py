"""``trustctl verify FILE``: validate a CMS SignedData offline and print the report.

Trust anchors are ``--anchor`` files plus the configured ``trust_anchor_files``; the
service's CAs are not consulted (no database or key store is needed). Exit status 0
for TOTAL_PASSED, 1 otherwise, so scripts can branch on the verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_File = typer.Argument(exists=True, dir_okay=False, readable=True, help="CMS file, DER or PEM")


def verify(
    file: Annotated[Path, _File],
    data: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="the content of a detached CMS"),
    ] = None,
    anchor: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="a trusted root certificate (repeatable)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Verify a CMS signature (GM/T 0029 VerifySignedMessage) and print the report."""
    # Imported here so that `trustctl --help` does not load the crypto stack.
    from asn1crypto import pem

    from trust.errors import TrustError
    from trust.settings import get_settings
    from trust.validation import Indication, render_text, verify_cms
    from trust.validation.certs import load_certificates

    raw = file.read_bytes()
    try:
        # PEM ("PKCS7" or "CMS" armor) is unwrapped; anything else goes to the parser as is.
        cms_der = pem.unarmor(raw)[2] if pem.detect(raw) else raw
        anchors = [
            cert
            for path in [*get_settings().trust_anchor_files, *(anchor or [])]
            for cert in load_certificates(path.read_bytes())
        ]
        report = verify_cms(
            cms_der, data.read_bytes() if data is not None else None, anchors=anchors
        )
    except (TrustError, OSError, ValueError) as exc:  # ValueError: broken PEM armor
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(report.model_dump_json(indent=2) if as_json else render_text(report), nl=as_json)
    raise typer.Exit(0 if report.indication is Indication.TOTAL_PASSED else 1)
