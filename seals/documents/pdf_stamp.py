"""Stamping a PDF with an electronic seal: the seal picture at its size where the caller
puts it, and a PAdES signature (``/SubFilter /ETSI.CAdES.detached``) by the seal signer's
key, whose private half stays in the key store (``trust.cms.CmsSigner``).

ECDSA and RSA signatures are assembled by pyHanko (``CmsPdfSigner``): PAdES B-B, B-T with
a signature timestamp or a document timestamp from the service's TSA, B-LT with the
chain, CRLs and OCSP responses the caller has. SM2 signatures are GM/T 0010 SignedData
(``pdf_gm``) with the same levels: the signature timestamp goes into the SignedData, the
document timestamp (an RFC 3161 token over SM3 of the revision) and the DSS (the given
certificates, CRLs and OCSP responses as they are: pyHanko cannot validate GM/T 0010
paths to choose them) are further revisions written by pyHanko. The seal's name is the
signature dictionary's /Name and its esID is in the field name
(``pdf_appearance.field_name``).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from asn1crypto import crl, ocsp, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_signer import (
    PdfSignatureMetadata,
    PdfSigner,
    PdfSigningSession,
    PdfTimeStamper,
)
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import read_certification_data
from pyhanko.stamp.base import BaseStampStyle
from pyhanko_certvalidator import ValidationContext

from seals.documents.pdf_appearance import PdfSeal, Placement, field_box, field_name, seal_style
from seals.documents.pdf_gm import SM2_DIGEST, sign_sm2
from seals.documents.pdf_io import DEFAULT_MAX_PDF_BYTES, open_writer, parsing
from seals.documents.pdf_signer import (
    CallableTimeStamper,
    CmsPdfSigner,
    TimestampFunction,
    cms_room,
)
from trust.clock import Clock, SystemClock
from trust.cms import GMT0010, CmsProfile, CmsSigner
from trust.cms.algorithms import signer_digest
from trust.errors import BadRequest, DocumentProtected
from trust.keys import KeyAlgorithm
from trust.validation.sm2_validator import SM2SignatureValidator

DOCUMENT_TIMESTAMP_FIELD = "DocTimeStamp"


class TimestampMode(StrEnum):
    NONE = "none"
    SIGNATURE = "signature"  # a token over the signature value, inside the CMS (PAdES B-T)
    DOCUMENT = "document"  # a document timestamp in a further revision (PAdES B-T via DTS)


class PadesLevel(StrEnum):
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"


@dataclass(frozen=True)
class ValidationMaterial:
    """What a B-LT signature embeds in the DSS: trust roots to build the path to, the
    intermediates, and revocation data the caller already holds (nothing is fetched)."""

    trust_roots: Sequence[x509.Certificate]
    intermediates: Sequence[x509.Certificate] = ()
    crls: Sequence[crl.CertificateList] = ()
    ocsps: Sequence[ocsp.OCSPResponse] = ()


@dataclass(frozen=True)
class StampOptions:
    reason: str | None = None
    location: str | None = None
    chain: Sequence[x509.Certificate] = ()  # the signer's CA certificates, for the CMS
    timestamp: TimestampFunction | None = None
    timestamp_mode: TimestampMode = TimestampMode.SIGNATURE
    validation: ValidationMaterial | None = None  # B-LT (ECDSA and RSA)
    # SM2 SignedData identifiers: GM/T 0010 content types, or PKCS#7 ones with SM3withSM2
    # (RFC5652 profile), which pyHanko-based validators with an SM2 plug-in can read.
    sm2_profile: CmsProfile = GMT0010
    max_bytes: int = DEFAULT_MAX_PDF_BYTES


@dataclass(frozen=True)
class PdfStampResult:
    pdf: bytes
    field_name: str
    es_id: str
    seal_name: str
    algorithm: KeyAlgorithm
    level: PadesLevel
    signing_time: datetime  # the service clock's, written as /M


def stamp_pdf(
    pdf: bytes,
    signer: CmsSigner,
    seal: PdfSeal,
    placement: Placement,
    options: StampOptions = StampOptions(),
    *,
    clock: Clock | None = None,
) -> PdfStampResult:
    """``pdf`` with ``seal`` shown at ``placement`` and signed by ``signer``, appended as
    an incremental update (earlier signatures stay valid).

    Synchronous: pyHanko's signing runs its own event loop, so call this from a worker
    thread, not from inside a running loop."""
    mode = options.timestamp_mode if options.timestamp is not None else TimestampMode.NONE
    writer = open_writer(pdf, options.max_bytes)
    name = parsing(lambda: field_name(writer.prev, seal.es_id), "cannot read the form fields")
    box = parsing(lambda: field_box(writer.prev, seal, placement), "cannot read the page tree")
    parsing(lambda: _check_not_locked(writer.prev), "cannot read the certification signature")
    spec = SigFieldSpec(sig_field_name=name, on_page=placement.page - 1, box=box)
    style = seal_style(seal)
    signing_time = (clock or SystemClock()).now()
    reason = options.reason or f"电子印章 {seal.name}"

    if signer.algorithm is KeyAlgorithm.SM2:
        out = _signing(
            lambda: sign_sm2(
                writer,
                signer,
                field_spec=spec,
                style=style,
                signing_time=signing_time,
                name=seal.name,
                reason=reason,
                location=options.location,
                chain=options.chain,
                timestamp=options.timestamp if mode is TimestampMode.SIGNATURE else None,
                profile=options.sm2_profile,
            )
        )
        out = _signing(lambda: _sm2_revisions(out, signer, options, mode))
    else:
        out = _signing(
            lambda: asyncio.run(
                _sign_pades(writer, signer, spec, style, seal, reason, options, mode, signing_time)
            ).getvalue()
        )
    level = PadesLevel.B_B if mode is TimestampMode.NONE else PadesLevel.B_T
    # B-LT is B-T plus validation data; without a timestamp the DSS makes no new level.
    if level is PadesLevel.B_T and options.validation is not None:
        level = PadesLevel.B_LT
    return PdfStampResult(
        pdf=out,
        field_name=name,
        es_id=seal.es_id,
        seal_name=seal.name,
        algorithm=signer.algorithm,
        level=level,
        signing_time=signing_time,
    )


async def _sign_pades(
    writer: IncrementalPdfFileWriter,
    signer: CmsSigner,
    spec: SigFieldSpec,
    style: BaseStampStyle,
    seal: PdfSeal,
    reason: str,
    options: StampOptions,
    mode: TimestampMode,
    signing_time: datetime,
) -> io.BytesIO:
    """The signed document as a stream: Python 3.11's ``asyncio.run`` may repr its main
    task, result included, and the repr of megabytes of ``bytes`` costs ~70 ms."""
    pdf_signer = CmsPdfSigner(signer, options.chain)
    stamper = CallableTimeStamper(options.timestamp) if options.timestamp else None
    context = _validation_context(options.validation)
    meta = PdfSignatureMetadata(
        field_name=spec.sig_field_name,
        md_algorithm=signer_digest(signer.algorithm),
        name=seal.name,
        reason=reason,
        location=options.location,
        subfilter=SigSeedSubFilter.PADES,
        embed_validation_info=context is not None,
        validation_context=context,
    )
    pades = _ClockedPdfSigner(
        signing_time,
        meta,
        pdf_signer,
        # A signature timestamp goes inside the CMS; a document timestamp is a revision
        # of its own, added afterwards (over the DSS too when there is one).
        timestamper=stamper if mode is TimestampMode.SIGNATURE else None,
        stamp_style=style,
        new_field_spec=spec,
    )
    room = cms_room(signer.certificate, options.chain, timestamped=mode is TimestampMode.SIGNATURE)
    # bytes_reserved counts the hex digits of /Contents.
    signed = await pades.async_sign_pdf(writer, bytes_reserved=2 * room, output=io.BytesIO())
    if mode is TimestampMode.DOCUMENT and stamper is not None:
        return await _document_timestamp(signed, stamper, signer_digest(signer.algorithm), context)
    return signed


async def _document_timestamp(
    signed: io.BytesIO,
    stamper: CallableTimeStamper,
    digest_algorithm: str,
    context: ValidationContext | None,
) -> io.BytesIO:
    """``signed`` with a document timestamp revision (field ``DocTimeStamp``)."""
    dts = PdfTimeStamper(stamper, field_name=DOCUMENT_TIMESTAMP_FIELD)
    return await dts.async_timestamp_pdf(
        IncrementalPdfFileWriter(signed, strict=True),
        digest_algorithm,
        validation_context=context,
        output=io.BytesIO(),
    )


def _sm2_revisions(
    signed: bytes, signer: CmsSigner, options: StampOptions, mode: TimestampMode
) -> bytes:
    """The SM2-signed document with its DSS (B-LT) and then its document timestamp."""
    material = options.validation
    if material is not None:
        stream = io.BytesIO(signed)
        certificates = [signer.certificate, *options.chain, *material.intermediates]
        DocumentSecurityStore.add_dss(
            stream,
            None,  # no VRI entry: PAdES (EN 319 142-1) validators use the DSS as a whole
            certs=[*certificates, *material.trust_roots],
            crls=list(material.crls),
            ocsps=list(material.ocsps),
            force_write=True,
        )
        signed = stream.getvalue()
    if mode is TimestampMode.DOCUMENT and options.timestamp is not None:
        stamper = CallableTimeStamper(options.timestamp)
        out = asyncio.run(_document_timestamp(io.BytesIO(signed), stamper, SM2_DIGEST, None))
        return out.getvalue()
    return signed


class _ClockedPdfSigner(PdfSigner):
    """``PdfSigner`` with the service clock's time: pyHanko reads the system time for /M
    and its pre-signing checks, and offers no other way to set it."""

    def __init__(self, now: datetime, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def init_signing_session(
        self, pdf_out: BasePdfFileWriter, existing_fields_only: bool = False
    ) -> PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._now
        return session


def _validation_context(material: ValidationMaterial | None) -> ValidationContext | None:
    if material is None:
        return None
    if not material.trust_roots:
        raise BadRequest("B-LT needs the trust roots of the signer's chain")
    return ValidationContext(
        trust_roots=list(material.trust_roots),
        other_certs=list(material.intermediates),
        crls=list(material.crls),
        ocsps=list(material.ocsps),
        allow_fetching=False,
        revocation_mode="soft-fail",
        signature_validator=SM2SignatureValidator(),
    )


def _check_not_locked(reader: PdfFileReader) -> None:
    """A certification signature whose DocMDP permits no change forbids another signature
    (pyHanko checks this for its own signing only, not for the SM2 embedding path)."""
    certification = read_certification_data(reader)
    if certification is not None and certification.permission is MDPPerm.NO_CHANGES:
        raise DocumentProtected("the document's certification signature permits no changes")


def _signing(action: Callable[[], bytes]) -> bytes:
    """Runs the signing; pyHanko's refusals (e.g. a signer the validation context rejects)
    and objects that only fail to parse while the update is written become 4xx errors."""

    def refusing() -> bytes:
        try:
            return action()
        except SigningError as exc:  # a ValueError: must be caught before parsing() does
            raise BadRequest(f"the PDF cannot be signed: {str(exc)[:300]}") from None

    return parsing(refusing, "cannot sign the PDF")
