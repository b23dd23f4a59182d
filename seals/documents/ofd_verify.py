"""Verification of every signature in an OFD package (GB/T 33190 §18, standards.md §8):
every document (DocBody) of the package, each with its own signature list.

Per signature, in order: the References (each file's SM3 recomputed), whether it was
added after a whole-protecting signature, then what SignedValue.dat holds:
- Seal type: an SES_Signature with Signature.xml as the original (dataHash), checked
  by ``seal_verifier``: the service passes its seal verifier (anchors, revocation,
  registry status); by default ``seals.verify.verify_signature`` without trust context;
- Sign type: a GM/T 0010 SignedData over SM3(Signature.xml) (``verify_cms``), or a bare
  DER SM2 signature over the Signature.xml bytes (ofdrw ``DigitalSignContainer``), which
  carries no certificate: it verifies only against ``certificates`` given by the caller.
Files no signature covers are listed; each document gets a summary (the worst verdict of
its signatures, SIGNED_DATA_NOT_FOUND without any) and the package the worst over all
signatures. A package that is not a readable OFD is a 4xx.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from asn1crypto import core, x509

from seals.documents.ofd_package import OfdPackage, PackageLimits, read_package
from seals.documents.ofd_structure import (
    DocBody,
    SignatureEntry,
    SignatureFile,
    layout,
    signature_file,
    signature_list,
)
from seals.documents.report import (
    DocumentFormat,
    DocumentReport,
    DocumentSummary,
    ReferenceResult,
    ReferenceStatus,
    SealSummary,
    SignatureReport,
    document_summary,
)
from seals.parse import parse_signature
from seals.verify import Check as SealCheck
from seals.verify import CheckStatus as SealCheckStatus
from seals.verify import VerificationResult, verify_signature
from trust import oids
from trust.clock import Clock, SystemClock
from trust.errors import DocumentMalformed, TrustError
from trust.keys import SM2PublicKey, load_public_key
from trust.sm2.backend import SM2Backend
from trust.sm3 import sm3
from trust.validation import verify_cms
from trust.validation.certs import CertificateInput, certificate_info, load_certificate
from trust.validation.report import (
    Check,
    CheckStatus,
    Finding,
    SubIndication,
)
from trust.validation.timestamps import TimestampChecker

# (SES_Signature DER, the signed original) -> the seal checks.
SealVerifierFn = Callable[[bytes, bytes], VerificationResult]

MAX_SIGNATURES = 256
SM3_METHODS = frozenset({"sm3", oids.SM3})
REFERENCES = "references"
PROTECTION = "protection"
SIGNATURE = "signature"


def verify_ofd(
    package: bytes | OfdPackage,
    *,
    certificates: Sequence[CertificateInput] = (),
    anchors: Sequence[CertificateInput] = (),
    seal_verifier: SealVerifierFn | None = None,
    timestamp_checker: TimestampChecker | None = None,
    limits: PackageLimits = PackageLimits(),
    clock: Clock | None = None,
    sm2_backend: SM2Backend | None = None,
) -> DocumentReport:
    """The report on every signature of ``package``. ``certificates`` are signer
    certificates for Sign-type signatures that carry none; ``anchors`` the roots CMS signer
    certificates are validated up to (without them, paths are not checked);
    ``timestamp_checker`` verifies signature timestamps in Sign-type SignedData."""
    if isinstance(package, bytes):
        package = read_package(package, limits)
    structure = layout(package)
    verifier = _Verifier(
        package,
        [load_certificate(c) for c in certificates],
        list(anchors),
        seal_verifier,
        timestamp_checker,
        clock or SystemClock(),
        sm2_backend,
    )
    warnings: list[Finding] = []
    reports: list[SignatureReport] = []
    documents: list[DocumentSummary] = []
    covered: set[str] = set()
    for index, body in enumerate(structure.bodies):
        entries: tuple[SignatureEntry, ...] = ()
        if body.signatures is not None:
            entries = signature_list(package, body.signatures).entries
        if len(reports) + len(entries) > MAX_SIGNATURES:
            raise DocumentMalformed(f"more than {MAX_SIGNATURES} signatures")
        found = _document(verifier, index, body, entries, covered, warnings)
        documents.append(document_summary(index, "/" + body.doc_root, found))
        reports.extend(found)
    return DocumentReport.build(
        format=DocumentFormat.OFD,
        signatures=reports,
        documents=tuple(documents),
        unprotected_files=tuple("/" + n for n in package.names if n not in covered),
        warnings=tuple(warnings),
    )


def _document(
    verifier: _Verifier,
    index: int,
    body: DocBody,
    entries: tuple[SignatureEntry, ...],
    covered: set[str],
    warnings: list[Finding],
) -> tuple[SignatureReport, ...]:
    """The reports on one document's signatures, in list order; what they cover is added
    to ``covered`` and a signature after whole protection to ``warnings``."""
    reports: list[SignatureReport] = []
    protected_by: str | None = None  # id of the first whole-protecting signature
    for entry in entries:
        described = signature_file(verifier.package, entry.location)
        report = verifier.signature(entry, described, body.signatures, protected_by, index)
        if report.whole_protected and protected_by is None:
            protected_by = entry.id
        reports.append(report)
        covered.update(r.name for r in described.references)
        covered.update((entry.location, described.signed_value))
    if protected_by is not None and entries[-1].id != protected_by:
        warnings.append(
            Finding(
                code="ofd.signed_after_whole_protection",
                message=f"document {index}: signatures were added after signature "
                f"{protected_by}, which protects the whole document",
            )
        )
    return tuple(reports)


class _Verifier:
    def __init__(
        self,
        package: OfdPackage,
        certificates: list[x509.Certificate],
        anchors: list[CertificateInput],
        seal_verifier: SealVerifierFn | None,
        timestamp_checker: TimestampChecker | None,
        clock: Clock,
        sm2_backend: SM2Backend | None,
    ) -> None:
        self.package = package
        self.certificates = certificates
        self.anchors = anchors
        self.seal_verifier = seal_verifier
        self.timestamp_checker = timestamp_checker
        self.digests: dict[str, bytes | None] = {}
        self.clock = clock
        self.backend = sm2_backend

    def signature(
        self,
        entry: SignatureEntry,
        described: SignatureFile,
        signatures_xml: str | None,
        protected_by: str | None,
        document: int,
    ) -> SignatureReport:
        original = self.package.read(entry.location)
        signed_value = self.package.read(described.signed_value)
        references, reference_check = self._references(described)
        checks = [reference_check, _protection(protected_by)]
        fields: dict[str, object] = {}
        if entry.type == "Sign":
            checks += self._sign(signed_value, original, fields)
        else:
            checks += self._seal(signed_value, original, fields)
        return SignatureReport.build(
            id=entry.id,
            document=document,
            type=entry.type,
            location="/" + entry.location,
            signing_time=described.date_time or None,
            whole_protected=signatures_xml is not None
            and any(r.name == signatures_xml for r in described.references),
            references=references,
            checks=checks,
            **fields,
        )

    def _references(self, described: SignatureFile) -> tuple[tuple[ReferenceResult, ...], Check]:
        if described.check_method.lower() not in SM3_METHODS:
            return (), _failed(
                REFERENCES,
                SubIndication.FORMAT_FAILURE,
                f"CheckMethod {described.check_method!r} is not SM3",
            )
        results = []
        for ref in described.references:
            digest = self._digest(ref.name)
            if digest is None:
                status = ReferenceStatus.MISSING
            elif hmac.compare_digest(digest, ref.check_value):
                status = ReferenceStatus.MATCH
            else:
                status = ReferenceStatus.MISMATCH
            results.append(ReferenceResult(file="/" + ref.name, status=status))
        bad = [
            f"{r.file} ({r.status.value})" for r in results if r.status is not ReferenceStatus.MATCH
        ]
        if bad:
            check = _failed(REFERENCES, SubIndication.HASH_FAILURE, "changed: " + ", ".join(bad))
        elif not results:
            check = _failed(REFERENCES, SubIndication.FORMAT_FAILURE, "no file is referenced")
        else:
            check = _passed(REFERENCES, f"all {len(results)} referenced files match their SM3")
        return tuple(results), check

    def _digest(self, name: str) -> bytes | None:
        """SM3 of a package file, once per file: however many References name it, the
        hashing stays bounded by the package size."""
        if name not in self.digests:
            data = self.package.get(name)
            self.digests[name] = None if data is None else sm3(data)
        return self.digests[name]

    def _seal(self, signed_value: bytes, original: bytes, fields: dict[str, object]) -> list[Check]:
        if self.seal_verifier is not None:
            result = self.seal_verifier(signed_value, original)
        else:
            result = verify_signature(signed_value, original=original, sm2_backend=self.backend)
        checks = [_from_seal_check(c) for c in result.checks]
        if result.version is None:  # did not parse: the format check says why
            return checks
        parsed = parse_signature(signed_value)
        seal = parsed.seal
        fields["seal"] = SealSummary(
            es_id=seal.info.es_id, name=seal.info.property.name, version=int(seal.version)
        )
        signer = _certificate(parsed.signer_cert)
        if signer is not None:
            fields["signer"] = certificate_info(signer)
        return checks

    def _sign(self, signed_value: bytes, original: bytes, fields: dict[str, object]) -> list[Check]:
        if _is_bare_signature(signed_value):
            return [self._bare(signed_value, original, fields)]
        report = verify_cms(
            signed_value,
            sm3(original),
            anchors=self.anchors,
            clock=self.clock,
            sm2_backend=self.backend,
            timestamp_checker=self.timestamp_checker,
        )
        if report.signer is not None:
            fields["signer"] = report.signer
        return list(report.checks)

    def _bare(self, signature: bytes, original: bytes, fields: dict[str, object]) -> Check:
        """ofdrw's bare SM2 signature: no certificate inside, so the caller's are tried."""
        if not self.certificates:
            return Check(
                name=SIGNATURE,
                status=CheckStatus.INDETERMINATE,
                sub_indication=SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                message="a bare SM2 signature without certificate: give the signer's certificate",
            )
        for cert in self.certificates:
            key = _sm2_key(cert, self.backend)
            if key is None:
                continue
            try:
                key.verify(signature, original)
            except TrustError:
                continue
            fields["signer"] = certificate_info(cert)
            return _passed(SIGNATURE, "bare SM2 signature over Signature.xml verifies")
        return _failed(
            SIGNATURE,
            SubIndication.SIG_CRYPTO_FAILURE,
            f"bare SM2 signature verifies with none of the {len(self.certificates)} certificates",
        )


def _protection(protected_by: str | None) -> Check:
    if protected_by is None:
        return _passed(PROTECTION, "no earlier signature protects the whole document")
    return _failed(
        PROTECTION,
        SubIndication.SIG_CONSTRAINTS_FAILURE,
        f"added after signature {protected_by}, which protects the whole document",
    )


def _from_seal_check(check: SealCheck) -> Check:
    """A ``seals.verify`` check in the validation vocabulary (same names and values)."""
    if check.status is SealCheckStatus.PASSED:
        return _passed(check.name.value, check.message)
    if check.status is SealCheckStatus.FAILED:
        value = check.sub_indication.value if check.sub_indication else "GENERIC"
        if value in SubIndication.__members__:
            return _failed(check.name.value, SubIndication(value), check.message)
        # A seal sub-indication the report vocabulary lacks: kept in the message.
        return _failed(check.name.value, SubIndication.GENERIC, f"{value}: {check.message}")
    return Check(name=check.name.value, status=CheckStatus.NOT_PERFORMED, message=check.message)


def _is_bare_signature(data: bytes) -> bool:
    """A DER SEQUENCE of exactly two INTEGERs: SM2 (r, s), not a ContentInfo."""
    try:
        value = core.Sequence.load(data, strict=True)
        items = [value[i] for i in range(len(value))]
    # asn1crypto's assorted parse errors: not a bare signature, let CMS parsing report it.
    except Exception:
        return False
    return len(items) == 2 and all(isinstance(i, core.Integer) or i.tag == 2 for i in items)


def _certificate(der: bytes) -> x509.Certificate | None:
    try:
        return load_certificate(der)
    except TrustError:
        return None


def _sm2_key(cert: x509.Certificate, backend: SM2Backend | None) -> SM2PublicKey | None:
    try:
        key = load_public_key(
            cert["tbs_certificate"]["subject_public_key_info"].dump(), sm2_backend=backend
        )
    except TrustError:
        return None
    return key if isinstance(key, SM2PublicKey) else None


def _passed(name: str, message: str) -> Check:
    return Check(name=name, status=CheckStatus.PASSED, message=message)


def _failed(name: str, sub: SubIndication, message: str) -> Check:
    return Check(name=name, status=CheckStatus.FAILED, sub_indication=sub, message=message)
