"""PDF verification and stamping as jobs for the bounded worker processes (``bounded``).

Arguments cross the process boundary as plain data (certificates as DER, the time as a
datetime). The signer's private key stays in the parent: the worker's ``CmsSigner`` and
timestamp function ask the parent (``call_parent``) for the one signature and the tokens,
so the worker never holds key material.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl, x509

from seals.documents.bounded import call_parent
from seals.documents.pdf_appearance import PdfSeal, Placement
from seals.documents.pdf_stamp import (
    PdfStampResult,
    StampOptions,
    ValidationMaterial,
    stamp_pdf,
)
from seals.documents.pdf_verify import PdfSignatureReport, verify_pdf
from trust.keys import KeyAlgorithm

SIGN = "sign"
TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class _FixedClock:
    """The parent's time for the job: one clock for the whole service."""

    at: datetime

    def now(self) -> datetime:
        return self.at


class _ParentSigner:
    """A ``CmsSigner`` whose signatures come from the parent's signer (the key store)."""

    def __init__(self, algorithm: KeyAlgorithm, certificate: bytes) -> None:
        self._algorithm = algorithm
        self._certificate = x509.Certificate.load(certificate)

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, data: bytes) -> bytes:
        signature = call_parent(SIGN, data)
        assert isinstance(signature, bytes)
        return signature


def _parent_timestamp(hash_algorithm: str, digest: bytes) -> bytes:
    token = call_parent(TIMESTAMP, hash_algorithm, digest)
    assert isinstance(token, bytes)
    return token


def _certificates(ders: Sequence[bytes]) -> list[x509.Certificate]:
    return [x509.Certificate.load(der) for der in ders]


def verify_job(
    pdf: bytes, anchors: Sequence[bytes], now: datetime, max_bytes: int
) -> tuple[PdfSignatureReport, ...]:
    return verify_pdf(
        pdf, anchors=_certificates(anchors), clock=_FixedClock(now), max_bytes=max_bytes
    )


@dataclass(frozen=True)
class MaterialJob:
    """``ValidationMaterial`` (B-LT) as DER."""

    trust_roots: tuple[bytes, ...]
    intermediates: tuple[bytes, ...]
    crls: tuple[bytes, ...]

    def load(self) -> ValidationMaterial:
        return ValidationMaterial(
            trust_roots=_certificates(self.trust_roots),
            intermediates=_certificates(self.intermediates),
            crls=[crl.CertificateList.load(der) for der in self.crls],
        )


@dataclass(frozen=True)
class StampJob:
    """``stamp_pdf``'s arguments as data; ``timestamp`` asks the parent's TSA."""

    algorithm: KeyAlgorithm
    certificate: bytes
    chain: tuple[bytes, ...]
    seal: PdfSeal
    placement: Placement
    timestamp: bool
    now: datetime
    max_bytes: int
    validation: MaterialJob | None = None


def stamp_job(pdf: bytes, job: StampJob) -> PdfStampResult:
    return stamp_pdf(
        pdf,
        _ParentSigner(job.algorithm, job.certificate),
        job.seal,
        job.placement,
        StampOptions(
            chain=_certificates(job.chain),
            timestamp=_parent_timestamp if job.timestamp else None,
            validation=job.validation.load() if job.validation is not None else None,
            max_bytes=job.max_bytes,
        ),
        clock=_FixedClock(job.now),
    )
