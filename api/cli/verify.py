"""``trustctl verify FILE``: validate a CMS SignedData offline and print the report.

Trust anchors are ``--anchor`` files plus the configured ``trust_anchor_files``; the
service's CAs are not consulted (no database or key store is needed). Revocation data
comes from ``--crl`` / ``--ocsp`` files and ``--evidence`` (a bundle from
``/v1/verify/cms?evidence=true`` or ``--evidence-out``), under ``--revocation-mode``.
Exit status 0 for TOTAL_PASSED, 1 otherwise, 2 when the input could not be read, so
scripts can branch on the verdict.
"""

from __future__ import annotations

import base64
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
    intermediate: Annotated[
        list[Path] | None,
        typer.Option(
            exists=True, dir_okay=False, help="intermediate certificates, PEM or DER (repeatable)"
        ),
    ] = None,
    crl: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="a CRL, DER or PEM (repeatable)"),
    ] = None,
    ocsp: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="an OCSP response, DER (repeatable)"),
    ] = None,
    revocation_mode: Annotated[
        str, typer.Option(help="soft-fail, hard-fail, require or none")
    ] = "soft-fail",
    evidence: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="an evidence bundle (JSON) whose certificates, CRLs and OCSP responses to use",
        ),
    ] = None,
    evidence_out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="write the evidence bundle (JSON) here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Verify a CMS signature (GM/T 0029 VerifySignedMessage) and print the report.

    Signature timestamps in the CMS are verified; a good one is the proven signing time.
    """
    # Imported here so that `trustctl --help` does not load the crypto stack.
    from asn1crypto import pem

    from timestamp.checker import TokenChecker
    from trust.clock import SystemClock
    from trust.errors import TrustError
    from trust.settings import get_settings
    from trust.validation import Indication, RevocationMode, render_text, verify_cms_detailed
    from trust.validation.certs import load_certificates
    from trust.validation.evidence import EvidenceBundle, build_evidence

    raw = file.read_bytes()
    try:
        mode = RevocationMode(revocation_mode)
        # PEM ("PKCS7" or "CMS" armor) is unwrapped; anything else goes to the parser as is.
        cms_der = pem.unarmor(raw)[2] if pem.detect(raw) else raw
        anchors = [
            cert
            for path in [*get_settings().trust_anchor_files, *(anchor or [])]
            for cert in load_certificates(path.read_bytes())
        ]
        crls = [path.read_bytes() for path in crl or []]
        ocsps = [path.read_bytes() for path in ocsp or []]
        intermediates = [
            cert for path in intermediate or [] for cert in load_certificates(path.read_bytes())
        ]
        if evidence is not None:
            bundle = EvidenceBundle.model_validate_json(evidence.read_bytes())
            intermediates += bundle.certificates()
            crls += [base64.b64decode(c) for c in bundle.crls_b64]
            ocsps += [base64.b64decode(o) for o in bundle.ocsp_responses_b64]
        clock = SystemClock()
        done = verify_cms_detailed(
            cms_der,
            data.read_bytes() if data is not None else None,
            anchors=anchors,
            intermediates=intermediates,
            crls=crls,
            ocsps=ocsps,
            revocation_mode=mode,
            clock=clock,
            timestamp_checker=TokenChecker(),
        )
        if evidence_out is not None:
            bundle = build_evidence(cms_der, done, crls=crls, ocsps=ocsps, created_at=clock.now())
            evidence_out.write_text(bundle.model_dump_json(indent=2))
    # ValueError: broken PEM armor, an unknown mode, a bundle that is not one
    except (TrustError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report = done.report
    typer.echo(report.model_dump_json(indent=2) if as_json else render_text(report), nl=as_json)
    raise typer.Exit(0 if report.indication is Indication.TOTAL_PASSED else 1)
