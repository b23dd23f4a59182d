"""Stamping and verifying documents whatever their format: the format is detected from
the content, then the OFD functions (or, once they exist, the PDF ones) do the work.

Stamping goes through the seal service (``SealService.stamp``: seal status, signer in
the seal, key store signing, timestamp, its own ``seal.stamp`` audit record); this
layer adds a ``document.stamp`` record naming the format and the result's SM3, so the
stamped file can be tied to the stamp later. Verification reads nothing but the
document and the trust the service is configured with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from keystore.model import Actor
from seals.documents.detect import detect_format
from seals.documents.ofd_package import PackageLimits
from seals.documents.ofd_sign import Placement, Rect, StampMode, stamp_ofd
from seals.documents.ofd_verify import SealVerifierFn, verify_ofd
from seals.documents.report import DocumentFormat, DocumentReport
from seals.registry import SealRecord
from seals.service import StampRequest, StampResult
from trust.auth import AuditSink
from trust.clock import Clock
from trust.errors import TrustError, UnsupportedDocumentFormat
from trust.sm3 import sm3
from trust.validation.certs import CertificateInput

OFD_MEDIA_TYPE = "application/ofd"
PDF_MEDIA_TYPE = "application/pdf"


class SealStamper(Protocol):
    """What document stamping needs of the seal service (``SealService`` is one)."""

    def get(self, esid: str) -> SealRecord: ...

    def stamp(self, request: StampRequest, actor: Actor) -> StampResult: ...


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
    # A riding seal (骑缝章) from ``page`` to ``last_page``, a slice on each.
    last_page: int | None = None


@dataclass(frozen=True)
class StampedDocument:
    data: bytes
    format: DocumentFormat
    media_type: str


class DocumentService:
    def __init__(
        self,
        seals: Callable[[], SealStamper],
        clock: Clock,
        audit: AuditSink,
        *,
        seal_verifier: SealVerifierFn | None = None,
        anchors: Callable[[], Sequence[CertificateInput]] = tuple,
        limits: PackageLimits = PackageLimits(),
    ) -> None:
        """``seals`` and ``anchors`` are called at each use: the seal service needs the key
        store, which a verify-only process may lack, and anchors change as CAs are made."""
        self._seals = seals
        self._clock = clock
        self._audit = audit
        self._seal_verifier = seal_verifier
        self._anchors = anchors
        self._limits = limits

    def stamp(self, request: StampDocumentRequest, actor: Actor) -> StampedDocument:
        details: dict[str, object] = {"seal_id": request.seal_id, "signer_id": request.signer_id}
        try:
            kind = detect_format(request.data)
            details["format"] = kind.value
            if kind is not DocumentFormat.OFD:
                raise UnsupportedDocumentFormat("PDF stamping is not available yet")
            stamped = self._stamp_ofd(request, actor)
        except TrustError as exc:
            self._audit.append(
                actor.id,
                "document.stamp",
                target=request.seal_id,
                outcome="failure",
                details={**details, "code": exc.code},
            )
            raise
        details["sm3"] = sm3(stamped.data).hex()
        self._audit.append(actor.id, "document.stamp", target=request.seal_id, details=details)
        return stamped

    def verify(
        self, data: bytes, *, certificates: Sequence[CertificateInput] = ()
    ) -> DocumentReport:
        kind = detect_format(data)
        if kind is not DocumentFormat.OFD:
            raise UnsupportedDocumentFormat("PDF verification is not available yet")
        return verify_ofd(
            data,
            certificates=certificates,
            anchors=self._anchors(),
            seal_verifier=self._seal_verifier,
            limits=self._limits,
            clock=self._clock,
        )

    def _stamp_ofd(self, request: StampDocumentRequest, actor: Actor) -> StampedDocument:
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
