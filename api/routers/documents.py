"""Sealed documents: stamp an OFD or a PDF with an electronic seal, and verify every
signature in one. The format comes from the content, never the file name.

Uploads are multipart (``file`` plus form fields) and may be as large as
``document_max_bytes`` (the body limit of these routes only). Stamping needs ``signer``
with a grant on the seal (resource type ``seal``, the ``seal_id`` field), and on the
signer when the token's signer grants are narrowed to signers; the seal service then
checks the seal's status and that the signer is one the seal lists. A Sign-type OFD
signature (no seal) needs ``signer`` with a grant on the signer (the ``signer`` field),
as the signing routes of ``api/routers/signers.py``. Verification is public while
``public_verify`` is on, else it needs ``verifier``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from api.deps import DocumentsDep
from api.errors import problem_responses
from api.security import Resource, public_if, require
from keystore import Actor
from seals.documents.ofd_sign import StampMode
from seals.documents.report import DocumentReport
from seals.documents.service import (
    OFD_MEDIA_TYPE,
    PDF_MEDIA_TYPE,
    SignDocumentRequest,
    StampDocumentRequest,
)
from trust.auth import Principal, Role
from trust.errors import Forbidden

router = APIRouter(prefix="/v1/documents", tags=["documents"])

Stamper = Annotated[
    Principal, require(Role.signer, resource=Resource("seal", form_field="seal_id"))
]
Signer = Annotated[
    Principal, require(Role.signer, resource=Resource("signer", form_field="signer"))
]
Verifier = Annotated[Principal | None, public_if("public_verify", Role.verifier)]

MAX_MM = 2000.0  # larger than any page OFD or PDF readers display
_FILE = File(description="the OFD package or PDF file", examples=["<invoice.ofd bytes>"])


def _binary(*media_types: str) -> dict[str, object]:
    binary = {"schema": {"type": "string", "format": "binary"}, "example": "<bytes>"}
    return {media: binary for media in media_types}


_OFD_FILE = File(description="the OFD package", examples=["<invoice.ofd bytes>"])
_SIGNER_ID = Form(
    min_length=1, max_length=64, description="signer id", examples=["sgn_4b1e0c9a7d3f2e6b8a5c1d0f"]
)
_MODE = Form(description="continue: later signatures allowed; whole: the document is closed")
_REPORT_EXAMPLE = {
    "format": "ofd",
    "indication": "TOTAL_PASSED",
    "sub_indication": None,
    "signatures": [
        {
            "id": "1",
            "document": 0,
            "type": "Seal",
            "location": "/Doc_0/Signs/Sign_0/Signature.xml",
            "indication": "TOTAL_PASSED",
            "sub_indication": None,
            "signing_time": "2026-11-22 02:00:00",
            "seal": {"es_id": "11010000000001", "name": "测试合同专用章", "version": 4},
            "whole_protected": False,
            "references": [{"file": "/Doc_0/Document.xml", "status": "match"}],
            "checks": [
                {
                    "name": "references",
                    "status": "passed",
                    "sub_indication": None,
                    "message": "all 6 referenced files match their SM3",
                },
                {
                    "name": "data_hash",
                    "status": "passed",
                    "sub_indication": None,
                    "message": "dataHash = SM3(original)",
                },
            ],
            "warnings": [],
        }
    ],
    "documents": [
        {
            "index": 0,
            "location": "/Doc_0/Document.xml",
            "indication": "TOTAL_PASSED",
            "sub_indication": None,
            "signatures": 1,
        }
    ],
    "unprotected_files": ["/Doc_0/Signs/Signatures.xml"],
    "warnings": [],
}


@router.post(
    "/stamp",
    response_class=Response,
    summary="Stamp a document with an electronic seal",
    responses={
        200: {
            "description": "the stamped document, same format as the upload",
            "content": _binary(OFD_MEDIA_TYPE, PDF_MEDIA_TYPE),
        },
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    },
)
async def stamp(
    principal: Stamper,
    documents: DocumentsDep,
    file: Annotated[UploadFile, _FILE],
    seal_id: Annotated[
        str,
        Form(
            min_length=1, max_length=64, description="the seal's esID", examples=["11010000000001"]
        ),
    ],
    signer: Annotated[str, _SIGNER_ID],
    x: Annotated[float, Form(ge=0, le=MAX_MM, description="left edge, mm from the left")],
    y: Annotated[float, Form(ge=0, le=MAX_MM, description="top edge, mm from the top")],
    page: Annotated[int, Form(ge=1, le=100_000, description="1-based page")] = 1,
    mode: Annotated[StampMode, _MODE] = StampMode.CONTINUE,
    timestamp: Annotated[bool, Form(description="timestamp the seal signature")] = False,
    last_page: Annotated[
        int | None, Form(ge=1, le=100_000, description="riding seal (骑缝章) up to this page")
    ] = None,
    ltv: Annotated[
        bool,
        Form(
            description="PDF: PAdES B-LT, the chain and the service CAs' CRLs in the DSS "
            "(needs timestamp)"
        ),
    ] = False,
) -> Response:
    # As for seal stamps (api/routers/seals.py): a token whose signer grants are narrowed
    # to signers may stamp only as one of those; otherwise the seal's signer list decides.
    narrowed = any(g.role is Role.signer and g.resource_type == "signer" for g in principal.grants)
    if narrowed and not principal.allows(frozenset({Role.signer}), "signer", signer):
        raise Forbidden(f"this token may not stamp as signer {signer!r}")
    request = StampDocumentRequest(
        data=await file.read(),
        seal_id=seal_id,
        signer_id=signer,
        page=page,
        x_mm=x,
        y_mm=y,
        mode=mode,
        timestamp=timestamp,
        last_page=last_page,
        ltv=ltv,
    )
    stamped = await run_in_threadpool(documents.stamp, request, Actor(principal.actor))
    return Response(stamped.data, media_type=stamped.media_type)


@router.post(
    "/sign",
    response_class=Response,
    summary="Sign an OFD document with a signer's certificate (Sign-type signature, no seal)",
    description="GB/T 33190 §18 Sign-type signature: SignedValue.dat is GM/T 0010 "
    "SignedData over SM3(Signature.xml) by the signer's key in the key store, with its CA "
    "chain and, with `timestamp`, a token from the service's TSA.",
    responses={
        200: {
            "description": "the signed OFD package",
            "content": _binary(OFD_MEDIA_TYPE),
        },
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def sign(
    principal: Signer,
    documents: DocumentsDep,
    file: Annotated[UploadFile, _OFD_FILE],
    signer: Annotated[str, _SIGNER_ID],
    mode: Annotated[StampMode, _MODE] = StampMode.CONTINUE,
    timestamp: Annotated[bool, Form(description="timestamp the signature")] = False,
) -> Response:
    request = SignDocumentRequest(
        data=await file.read(), signer_id=signer, mode=mode, timestamp=timestamp
    )
    signed = await run_in_threadpool(documents.sign, request, Actor(principal.actor))
    return Response(signed.data, media_type=signed.media_type)


@router.post(
    "/verify",
    summary="Verify every signature and seal in a document",
    responses={
        200: {"content": {"application/json": {"example": _REPORT_EXAMPLE}}},
        **problem_responses(400, 401, 403, 413, 415, 422, 429),
    },
)
async def verify(
    _: Verifier, documents: DocumentsDep, file: Annotated[UploadFile, _FILE]
) -> DocumentReport:
    data = await file.read()
    return await run_in_threadpool(documents.verify, data)
