"""SM2 PDF signatures: GM/T 0010 SignedData built by ``trust.cms`` and embedded with
pyHanko's low-level ``PdfCMSEmbedder``.

pyHanko's CMS builder cannot write SM2 (it would name the mechanism ``sm3_ecdsa`` and use
PKCS#7 content types), so the document's byte ranges are hashed with SM3 by pyHanko, the
SignedData (GM/T 0010 content types, SM2-1 signature OID, signingCertificateV2) comes
from ``trust.cms.build_signed_data`` and an optional signature timestamp (SM3 over the
signature value) is added as the id-aa-timeStampToken unsigned attribute.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers.cms_embedder import (
    PdfCMSEmbedder,
    SigAppearanceSetup,
    SigIOSetup,
    SigObjSetup,
)
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest, SignatureObject
from pyhanko.stamp.base import BaseStampStyle

from seals.documents.pdf_signer import TimestampFunction, cms_room
from trust.cms import (
    GMT0010,
    CmsProfile,
    CmsSigner,
    add_unsigned_attributes,
    build_signed_data,
    load_content_info,
    timestamp_token_attribute,
)
from trust.cms.algorithms import digest
from trust.errors import BackendError

SM2_DIGEST = "sm3"


def sign_sm2(
    writer: IncrementalPdfFileWriter,
    signer: CmsSigner,
    *,
    field_spec: SigFieldSpec,
    style: BaseStampStyle,
    signing_time: datetime,
    name: str,
    reason: str | None,
    location: str | None,
    chain: Sequence[x509.Certificate] = (),
    timestamp: TimestampFunction | None = None,
    profile: CmsProfile = GMT0010,
) -> bytes:
    """The signed PDF: ``writer``'s document plus one SM2 signature in a new field."""
    reserved = cms_room(signer.certificate, chain, timestamped=timestamp is not None)
    embedder = PdfCMSEmbedder(new_field_spec=field_spec)
    steps = embedder.write_cms(field_name=field_spec.sig_field_name, writer=writer)
    next(steps)
    placeholder = SignatureObject(
        timestamp=signing_time,
        subfilter=SigSeedSubFilter.PADES,
        name=name,
        reason=reason,
        location=location,
        bytes_reserved=2 * reserved,  # hex digits in /Contents
    )
    steps.send(
        SigObjSetup(
            sig_placeholder=placeholder,
            appearance_setup=SigAppearanceSetup(style=style, timestamp=signing_time, name=name),
        )
    )
    prepared, output = steps.send(SigIOSetup(md_algorithm=SM2_DIGEST, output=io.BytesIO()))
    assert isinstance(prepared, PreparedByteRangeDigest)
    buffer = output.getbuffer()
    signed = bytes(buffer[: prepared.reserved_region_start]) + bytes(
        buffer[prepared.reserved_region_end :]
    )
    del buffer  # a live memoryview would stop pyHanko writing /Contents into the stream
    if digest(SM2_DIGEST, signed) != prepared.document_digest:
        raise BackendError("the signed byte ranges do not hash to pyHanko's document digest")
    cms = build_signed_data(
        signed, signer, profile=profile, detached=True, extra_certificates=chain
    )
    if timestamp is not None:
        cms = _with_signature_timestamp(cms, timestamp)
    steps.send(cms)
    return bytes(output.getvalue())


def _with_signature_timestamp(cms: bytes, timestamp: TimestampFunction) -> bytes:
    signature = load_content_info(cms)["content"]["signer_infos"][0]["signature"].native
    token = timestamp(SM2_DIGEST, digest(SM2_DIGEST, signature))
    return add_unsigned_attributes(cms, [timestamp_token_attribute(token)])
