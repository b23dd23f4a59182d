"""Plain-text rendering of a validation report for the CLI and for people reading logs.

The verdict comes first, then what it rests on (time, signer, chain, revocation
evidence), then the checks performed and, separately, the checks NOT performed with
their reasons, so that the limits of a pass are never further than a glance away. A
CMS with several signers shows the overall verdict, then each signer's report in turn.
"""

from __future__ import annotations

from datetime import datetime

from trust.validation.report import (
    CertificateInfo,
    Check,
    Finding,
    RevocationEvidence,
    TimestampInfo,
    ValidationReport,
)


def render_text(report: ValidationReport) -> str:
    if len(report.signers) > 1:
        return _several_signers(report)
    lines = [
        f"Validation report (schema {report.schema_version})",
        f"  object:          {report.validated_object.value}",
        f"  indication:      {_verdict(report)}",
        f"  validation time: {_time(report.validation_time)} ({report.time_source.value})",
    ]
    if report.claimed_signing_time is not None:
        lines.append(f"  claimed signing time: {_time(report.claimed_signing_time)} (not proven)")
    if report.proven_signing_time is not None:
        lines.append(f"  proven signing time:  {_time(report.proven_signing_time)}")
    if report.signer is not None:
        lines += ["", "Signer", *_certificate(report.signer, "  ")]
    if report.chain:
        lines += ["", "Certificate chain (first: the certificate validated; last: the anchor)"]
        for i, info in enumerate(report.chain):
            lines += _certificate(info, f"  [{i}] ", "      ")
    if report.revocation:
        lines += ["", "Revocation evidence used", *map(_evidence, report.revocation)]
    if report.timestamps:
        lines += ["", "Timestamps", *map(_timestamp, report.timestamps)]
    lines += ["", "Checks performed", *(_check(c) for c in report.performed)]
    if report.not_performed:
        lines += ["", "Checks NOT performed", *(_check(c) for c in report.not_performed)]
    if report.warnings:
        lines += ["", "Warnings", *map(_finding, report.warnings)]
    if report.hints:
        lines += ["", "Hints (diagnostics only; they never change the result)"]
        lines += map(_finding, report.hints)
    return "\n".join(lines) + "\n"


def _several_signers(report: ValidationReport) -> str:
    """The verdict (the worst signer's), then each signer's report in full, indented."""
    count = len(report.signers)
    lines = [
        f"Validation report (schema {report.schema_version})",
        f"  object:          {report.validated_object.value}, {count} signers",
        f"  indication:      {_verdict(report)} (the worst of the signers')",
    ]
    for i, each in enumerate(report.signers, 1):
        lines += ["", f"Signer {i} of {count}: {_verdict(each)}"]
        lines += ["    " + line if line else "" for line in render_text(each).splitlines()]
    return "\n".join(lines) + "\n"


def _verdict(report: ValidationReport) -> str:
    if report.sub_indication is None:
        return report.indication.value
    return f"{report.indication.value} / {report.sub_indication.value}"


def _time(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _certificate(info: CertificateInfo, first: str, rest: str | None = None) -> list[str]:
    rest = first if rest is None else rest
    anchor = "  (trust anchor)" if info.trust_anchor else ""
    return [
        f"{first}subject: {info.subject}{anchor}",
        f"{rest}issuer:  {info.issuer}",
        f"{rest}serial:  {info.serial}",
        f"{rest}valid:   {_time(info.not_before)} to {_time(info.not_after)}",
    ]


def _evidence(e: RevocationEvidence) -> str:
    status = e.status.value
    if e.revocation_time is not None:
        status += f" at {_time(e.revocation_time)}"
        if e.revocation_reason:
            status += f" ({e.revocation_reason})"
    return (
        f"  {e.source.value.upper()} from {e.issuer}, this update {_time(e.this_update)}: "
        f"{e.certificate_subject} (serial {e.certificate_serial}) {status}"
    )


def _timestamp(t: TimestampInfo) -> str:
    tsa = t.tsa.subject if t.tsa is not None else "unknown TSA"
    verdict = t.indication.value + (f" / {t.sub_indication.value}" if t.sub_indication else "")
    accuracy = f" ±{t.accuracy_microseconds} µs" if t.accuracy_microseconds else ""
    return f"  {_time(t.gen_time)}{accuracy} from {tsa}, serial {t.serial}: {verdict}"


def _check(c: Check) -> str:
    sub = f" {c.sub_indication.value}" if c.sub_indication is not None else ""
    return f"  [{c.status.value}{sub}] {c.name}: {c.message}"


def _finding(f: Finding) -> str:
    return f"  {f.code}: {f.message}"
