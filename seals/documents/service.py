"""Stamping and verifying documents whatever their format: the format is detected from
the content (``detect``), then the OFD or the PDF functions do the work.

OFD stamps go through the seal service (``SealService.stamp``: seal status, signer in
the seal, key store signing, timestamp, its ``seal.stamp`` audit record). A PDF stamp
is a PAdES signature, not an SES_Signature: the seal service makes the same checks
(``stamping_signer``), then ``stamp_pdf`` signs with the signer registry's
``CmsSigner`` (a ``key.sign`` audit record) and the seal's picture. pyHanko's work on a
PDF (stamping and verifying) runs in a bounded worker process (``bounded``, ``pdf_jobs``);
the signature and timestamp are made here, at the worker's request. Either way this
layer adds a ``document.stamp`` record naming the format and the result's SM3, so the
stamped file can be tied to the stamp later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from asn1crypto import x509

from ca.service import CaInfo
from ca.signers import Timestamper
from keystore.model import Actor
from seals.documents.bounded import Callback, WorkerLimits, shared_pool
from seals.documents.detect import detect_format
from seals.documents.ofd_package import PackageLimits
from seals.documents.ofd_sign import Placement, Rect, StampMode, sign_ofd, stamp_ofd
from seals.documents.ofd_verify import SealVerifierFn, verify_ofd
from seals.documents.pdf_appearance import PdfSeal
from seals.documents.pdf_appearance import Placement as PdfPlacement
from seals.documents.pdf_io import DEFAULT_MAX_PDF_BYTES
from seals.documents.pdf_jobs import (
    SIGN,
    TIMESTAMP,
    MaterialJob,
    StampJob,
    stamp_job,
    verify_job,
)
from seals.documents.pdf_report import pdf_document_report
from seals.documents.report import DocumentFormat, DocumentReport, SealSummary
from seals.registry import SealRecord
from seals.service import StampRequest, StampResult, StampSigner
from timestamp.checker import TokenChecker
from trust.audit.attempts import record_refusal
from trust.auth import AuditSink
from trust.clock import Clock
from trust.cms import CmsSigner
from trust.errors import (
    NotFound,
    TimestampUnavailable,
    TrustError,
    UnsupportedDocumentFormat,
    ValidationFailed,
)
from trust.sm3 import sm3
from trust.validation.certs import CertificateInput

log = logging.getLogger("trust.documents")

OFD_MEDIA_TYPE = "application/ofd"
PDF_MEDIA_TYPE = "application/pdf"
_SEAL_VERSION = 4  # the seals this service makes (GB/T 38540)


class SealStamper(Protocol):
    """What document stamping needs of the seal service (``SealService`` is one)."""

    def get(self, esid: str) -> SealRecord: ...

    def stamp(self, request: StampRequest, actor: Actor) -> StampResult: ...

    def stamping_signer(
        self, esid: str, signer_id: str, actor: Actor
    ) -> tuple[SealRecord, StampSigner]: ...


class CrlSource(Protocol):
    """The service CAs' CRLs for B-LT stamps (``CertificateAuthority`` is one)."""

    def list_cas(self) -> Sequence[CaInfo]: ...

    def current_crl(self, ca_id: str, generation: int | None = None) -> bytes: ...


class DocumentSigners(Protocol):
    """What PDF stamping needs of the signer registry (``SignerRegistry`` is one)."""

    def cms_signer(self, signer_id: str, actor: Actor) -> CmsSigner: ...

    def chain(self, signer_id: str) -> list[x509.Certificate]: ...


@dataclass(frozen=True)
class StampDocumentRequest:
    data: bytes
    seal_id: str  # esID
    signer_id: str
    page: int  # 1-based
    x_mm: float
    y_mm: float
    mode: StampMode = StampMode.CONTINUE
    timestamp: bool = False
    # A riding seal (骑缝章) from ``page`` to ``last_page``, a slice on each (OFD only).
    last_page: int | None = None
    # PAdES B-LT (PDF only, with ``timestamp``): the signer's chain, the service's roots
    # and its CAs' current CRLs in the document's DSS.
    ltv: bool = False


@dataclass(frozen=True)
class SignDocumentRequest:
    """A Sign-type OFD signature (GB/T 33190 §18, no seal): GM/T 0010 SignedData over
    SM3(Signature.xml) by the signer registry's signer."""

    data: bytes
    signer_id: str
    mode: StampMode = StampMode.CONTINUE
    timestamp: bool = False


@dataclass(frozen=True)
class StampedDocument:
    data: bytes
    format: DocumentFormat
    media_type: str


class DocumentService:
    def __init__(
        self,
        seals: Callable[[], SealStamper],
        signers: Callable[[], DocumentSigners],
        clock: Clock,
        audit: AuditSink,
        *,
        seal_verifier: SealVerifierFn | None = None,
        anchors: Callable[[], Sequence[x509.Certificate]] = tuple,
        timestamper: Timestamper | None = None,
        limits: PackageLimits = PackageLimits(),
        pdf_limits: WorkerLimits = WorkerLimits(),
        pdf_workers: int = 2,
        crls: Callable[[], CrlSource] | None = None,
    ) -> None:
        """``seals``, ``signers`` and ``anchors`` are called at each use: the services
        need the key store, which a verify-only process may lack, and anchors change as
        CAs are made. PDFs are processed within ``pdf_limits`` by the process's shared
        pool of ``pdf_workers`` worker processes (started on first use)."""
        self._seals = seals
        self._signers = signers
        self._clock = clock
        self._audit = audit
        self._seal_verifier = seal_verifier
        self._anchors = anchors
        self._timestamper = timestamper
        self._limits = limits
        self._pdf_limits = pdf_limits
        self._pdf_workers = pdf_workers
        self._crls = crls

    def stamp(self, request: StampDocumentRequest, actor: Actor) -> StampedDocument:
        details: dict[str, object] = {"seal_id": request.seal_id, "signer_id": request.signer_id}

        def run() -> StampedDocument:
            kind = detect_format(request.data)
            details["format"] = kind.value
            if kind is DocumentFormat.OFD:
                return self._stamp_ofd(request, actor)
            return self._stamp_pdf(request, actor)

        stamped = record_refusal(
            self._audit, actor.id, "document.stamp", request.seal_id, run, details
        )
        details["sm3"] = sm3(stamped.data).hex()
        self._audit.append(actor.id, "document.stamp", target=request.seal_id, details=details)
        return stamped

    def sign(self, request: SignDocumentRequest, actor: Actor) -> StampedDocument:
        """An OFD with one more Sign-type signature; a ``document.sign`` audit record
        (format, signer, SM3 of the result) beside the key store's ``key.sign``."""
        details: dict[str, object] = {"signer_id": request.signer_id}

        def run() -> bytes:
            if detect_format(request.data) is not DocumentFormat.OFD:
                raise UnsupportedDocumentFormat(
                    "Sign-type signatures are OFD signatures; a PDF is signed by stamping it"
                )
            details["format"] = DocumentFormat.OFD.value
            self._check_timestamper(request.timestamp)
            signers = self._signers()
            return sign_ofd(
                request.data,
                signer=signers.cms_signer(request.signer_id, actor),
                chain=signers.chain(request.signer_id),
                mode=request.mode,
                timestamp=self._timestamper if request.timestamp else None,
                limits=self._limits,
                clock=self._clock,
            )

        data = record_refusal(
            self._audit, actor.id, "document.sign", request.signer_id, run, details
        )
        details["sm3"] = sm3(data).hex()
        self._audit.append(actor.id, "document.sign", target=request.signer_id, details=details)
        return StampedDocument(data, DocumentFormat.OFD, OFD_MEDIA_TYPE)

    def verify(
        self, data: bytes, *, certificates: Sequence[CertificateInput] = ()
    ) -> DocumentReport:
        """The report on every signature; ``certificates`` are signer certificates for
        OFD signatures that carry none (ofdrw's bare SM2 signatures)."""
        if detect_format(data) is DocumentFormat.PDF:
            anchors = tuple(anchor.dump() for anchor in self._anchors())
            reports = shared_pool(self._pdf_workers).run(
                verify_job,
                (data, anchors, self._clock.now(), DEFAULT_MAX_PDF_BYTES),
                self._pdf_limits,
            )
            return pdf_document_report(reports, resolve_seal=self._registered)
        return verify_ofd(
            data,
            certificates=certificates,
            anchors=self._anchors(),
            seal_verifier=self._seal_verifier,
            timestamp_checker=TokenChecker(),
            limits=self._limits,
            clock=self._clock,
        )

    def _stamp_ofd(self, request: StampDocumentRequest, actor: Actor) -> StampedDocument:
        if request.ltv:
            raise ValidationFailed("ltv (PAdES B-LT) is a PDF option")
        seals = self._seals()
        seal = seals.get(request.seal_id)
        rect = Rect(request.x_mm, request.y_mm, seal.width_mm, seal.height_mm)

        def seal_signature(data_hash: bytes, property_info: str) -> bytes:
            result = seals.stamp(
                StampRequest(
                    esid=request.seal_id,
                    signer_id=request.signer_id,
                    property_info=property_info,
                    data_sm3=data_hash,
                    timestamp=request.timestamp,
                ),
                actor,
            )
            return result.signature

        data = stamp_ofd(
            request.data,
            seal_signature=seal_signature,
            placement=Placement(request.page, rect, request.last_page),
            mode=request.mode,
            limits=self._limits,
            clock=self._clock,
        )
        return StampedDocument(data, DocumentFormat.OFD, OFD_MEDIA_TYPE)

    def _stamp_pdf(self, request: StampDocumentRequest, actor: Actor) -> StampedDocument:
        if request.last_page is not None or request.mode is StampMode.WHOLE:
            raise ValidationFailed("riding seals and whole protection are OFD options")
        if request.ltv and not request.timestamp:
            raise ValidationFailed("ltv (PAdES B-LT) builds on B-T: it needs timestamp")
        self._check_timestamper(request.timestamp)
        seal, _ = self._seals().stamping_signer(request.seal_id, request.signer_id, actor)
        signers = self._signers()
        signer = signers.cms_signer(request.signer_id, actor)
        chain = tuple(c.dump() for c in signers.chain(request.signer_id))
        job = StampJob(
            algorithm=signer.algorithm,
            certificate=signer.certificate.dump(),
            chain=chain,
            seal=PdfSeal(seal.esid, seal.name, seal.picture, seal.width_mm, seal.height_mm),
            placement=PdfPlacement(request.page, request.x_mm, request.y_mm),
            timestamp=request.timestamp,
            now=self._clock.now(),
            max_bytes=DEFAULT_MAX_PDF_BYTES,
            validation=self._material(chain) if request.ltv else None,
        )
        calls: dict[str, Callback] = {SIGN: signer.sign}
        if request.timestamp and self._timestamper is not None:
            calls[TIMESTAMP] = self._timestamper
        result = shared_pool(self._pdf_workers).run(
            stamp_job, (request.data, job), self._pdf_limits, calls=calls
        )
        return StampedDocument(result.pdf, DocumentFormat.PDF, PDF_MEDIA_TYPE)

    def _material(self, chain: tuple[bytes, ...]) -> MaterialJob:
        """B-LT validation data: the service's anchors, the signer's CA chain and the
        current CRL of every service CA (one that has none is left out, as verification
        does)."""
        crls: list[bytes] = []
        if self._crls is not None:
            authority = self._crls()
            for ca in authority.list_cas():
                try:
                    crls.append(authority.current_crl(ca.id))
                except TrustError as exc:
                    log.warning("no current CRL for CA %s: %s", ca.id, exc.detail)
        anchors = tuple(anchor.dump() for anchor in self._anchors())
        return MaterialJob(trust_roots=anchors, intermediates=chain, crls=tuple(crls))

    def _check_timestamper(self, wanted: bool) -> None:
        """Before any signature: one refused its timestamp afterwards would already be
        recorded by the key store."""
        if not wanted:
            return
        if self._timestamper is None:
            raise TimestampUnavailable("no time-stamp authority is configured")
        self._timestamper.check()

    def _registered(self, esid: str) -> SealSummary | None:
        """The registry's name for a seal a PDF stamp names; None when unknown."""
        try:
            seal = self._seals().get(esid)
        except NotFound:
            return None
        return SealSummary(es_id=seal.esid, name=seal.name, version=_SEAL_VERSION)
