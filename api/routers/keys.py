"""Keys: create, read, use (sign, verify, encrypt, decrypt) and manage keys of the key store.

Lifecycle routes need ``key_admin``; use needs ``signer`` (``verifier`` may also verify
and read public keys). A grant narrowed to key ids holds only on routes naming one of
them. The key store decides the rest (states, purposes, ownership) with its own codes.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from starlette.concurrency import run_in_threadpool

from api.deps import KeyStoreDep
from api.errors import problem_responses
from api.security import Resource, require
from keystore import (
    MAX_REASON,
    Actor,
    Algorithm,
    GenerateRequest,
    KeyInfo,
    KeyState,
    KeyStore,
    KeyVersionInfo,
    Purpose,
    SignInput,
    SignResult,
)
from trust.auth import Principal, Role
from trust.errors import InvalidSignature
from trust.keys import SignatureScheme
from trust.keys.base import to_pem

router = APIRouter(prefix="/v1", tags=["keys"])

_KEY = Resource("key", path_param="key_id")
KeyAdmin = Annotated[Principal, require(Role.key_admin)]
KeyAdminOn = Annotated[Principal, require(Role.key_admin, resource=_KEY)]
Reader = Annotated[Principal, require(Role.key_admin, Role.signer, resource=_KEY)]
PublicReader = Annotated[
    Principal, require(Role.key_admin, Role.signer, Role.verifier, resource=_KEY)
]
Signer = Annotated[Principal, require(Role.signer, resource=_KEY)]
Verifier = Annotated[Principal, require(Role.signer, Role.verifier, resource=_KEY)]

KeyId = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$", examples=["key_5f0c2e4a9b1d7c3e8f6a0b2d"]),
]

_EXAMPLE_ID = "key_5f0c2e4a9b1d7c3e8f6a0b2d"
# A real SM2 key and its signature of "hello world" with the default ID (openssl pkeyutl).
_EXAMPLE_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAETs1IQhXpLS+U3xPF2J+O11BKXb3h\n"
    "i4Q9qyz/KB5s0yvEBhQA1hcadwzfTRdGS0kwEA7tvLApYTj10wH1m5PF9A==\n"
    "-----END PUBLIC KEY-----\n"
)
_EXAMPLE_SIGNATURE = (
    "MEUCICUrWyYNXg5sq24oNata7CCTGjUw6iSi0GgvVMxUUmuoAiEA"
    "i5D40Ury3cnf81x6N4ymyuWPQfRv8yYkTNWp5bRvmvU="
)
_EXAMPLE_DATA = "aGVsbG8gd29ybGQ="
# "hello world" encrypted to that key (GM/T 0009 SM2Cipher DER).
_EXAMPLE_CIPHERTEXT = (
    "MHQCIQCEqWRPuFDsx/Zj4Y/YA2colBC+/c2UGCuYH9GVMk+huQIgAdbKTVsPUGGaGQaLOsoBhLChwa5EPWL3dxgP9Ipu"
    "sjQEIGUPEeelhNo8wbH9HgW3FXOPzwyIKQK+NlLlnLdMXi2VBAvxlV9Ge4BlvpQ77A=="
)


def _decode_b64(value: object) -> bytes:
    # Canonical only (RFC 4648 alphabet, exact padding): a stray character is refused
    # rather than skipped, so what is signed is exactly what the client encoded.
    if not isinstance(value, str):
        raise ValueError("expected a base64 string")
    try:
        decoded = binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        decoded = None
    if decoded is None or binascii.b2a_base64(decoded, newline=False).decode() != value:
        raise ValueError("not canonical base64 (RFC 4648, padded)")
    return decoded


Base64 = Annotated[
    bytes,
    PlainValidator(_decode_b64),
    WithJsonSchema({"type": "string", "format": "byte", "contentEncoding": "base64"}),
]
SignerId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024),
    Field(description="SM2 distinguishing ID (UTF-8); default 1234567812345678"),
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _actor(principal: Principal, key_id: str | None = None) -> Actor:
    """The key store's view of the caller: ``key_admin`` when that role holds here (on
    ``key_id``, or everywhere when no key is named), and ``key_id`` as a key grant when
    ``signer`` holds on it. ``admin`` is not passed on: it is not a key role."""
    admin = _holds(principal, Role.key_admin, key_id)
    grants = (
        frozenset({key_id})
        if key_id is not None and _holds(principal, Role.signer, key_id)
        else frozenset()
    )
    return Actor(
        principal.actor, frozenset({Role.key_admin.value}) if admin else frozenset(), grants
    )


def _holds(principal: Principal, role: Role, key_id: str | None) -> bool:
    return principal.allows(frozenset({role}), "key", key_id)


# --- models -------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateKeyRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"algorithm": "SM2", "purpose": "sign", "label": "invoice signing"}]
        }
    )

    algorithm: Algorithm
    purpose: Purpose
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class KeyVersionModel(BaseModel):
    version: int
    state: Literal["active", "retired", "destroyed"] = Field(
        description="active: the primary, used for new signatures; retired: still verifies "
        "and decrypts; destroyed: its material is gone"
    )
    created_at: datetime
    fingerprint: str | None = Field(description="SM3 of the SubjectPublicKeyInfo, hex")
    public_key_pem: str | None = Field(description="SubjectPublicKeyInfo; null for SM4 keys")

    @classmethod
    def of(cls, v: KeyVersionInfo, primary: int) -> KeyVersionModel:
        if v.destroyed_at is not None:
            state: Literal["active", "retired", "destroyed"] = "destroyed"
        else:
            state = "active" if v.version == primary else "retired"
        pem = None
        if v.public_key_der is not None:
            pem = to_pem("PUBLIC KEY", v.public_key_der).decode("ascii")
        return cls(
            version=v.version,
            state=state,
            created_at=v.created_at,
            fingerprint=v.fingerprint,
            public_key_pem=pem,
        )


_VERSION_EXAMPLE: dict[str, Any] = {
    "version": 1,
    "state": "active",
    "created_at": "2026-01-01T00:00:00Z",
    "fingerprint": "9c1f6a0e5d3b7c2a4e8f1b6d0a9c3e5f7b2d4a6c8e0f1a3b5c7d9e1f2a4b6c8d",
    "public_key_pem": _EXAMPLE_PEM,
}
_KEY_EXAMPLE: dict[str, Any] = {
    "id": _EXAMPLE_ID,
    "label": "invoice signing",
    "algorithm": "SM2",
    "purpose": "sign",
    "state": "active",
    "owner": "token:3f9a1c0b7e42",
    "created_at": "2026-01-01T00:00:00Z",
    "expires_at": None,
    "compromised_at": None,
    "state_reason": None,
    "destroy_after": None,
    "destroyed_at": None,
    "primary_version": 1,
    "versions": [_VERSION_EXAMPLE],
}


class KeyModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_KEY_EXAMPLE]})

    id: str
    label: str
    algorithm: Algorithm
    purpose: Purpose
    state: KeyState
    owner: str
    created_at: datetime
    expires_at: datetime | None
    compromised_at: datetime | None
    state_reason: str | None = Field(description="the reason given with the latest state change")
    destroy_after: datetime | None = Field(description="when scheduled destruction happens")
    destroyed_at: datetime | None
    primary_version: int
    versions: list[KeyVersionModel]

    @classmethod
    def of(cls, info: KeyInfo) -> KeyModel:
        return cls(
            id=info.id,
            label=info.label,
            algorithm=info.algorithm,
            purpose=info.purpose,
            state=info.state,
            owner=info.owner,
            created_at=info.created_at,
            expires_at=info.expires_at,
            compromised_at=info.compromised_at,
            state_reason=info.state_reason,
            destroy_after=info.destroy_after,
            destroyed_at=info.destroyed_at,
            primary_version=info.primary_version,
            versions=[KeyVersionModel.of(v, info.primary_version) for v in info.versions],
        )


class KeyList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"keys": [_KEY_EXAMPLE]}]})

    keys: list[KeyModel]


class _Signed(_Request):
    """The signed bytes: the message, or its digest (SM2: e = SM3(Z || M))."""

    data_b64: Base64 | None = None
    digest_b64: Base64 | None = None
    signer_id: SignerId | None = None

    @model_validator(mode="after")
    def _one_input(self) -> _Signed:
        if (self.data_b64 is None) == (self.digest_b64 is None):
            raise ValueError("give exactly one of data_b64 and digest_b64")
        if self.digest_b64 is not None and self.signer_id is not None:
            raise ValueError("signer_id applies to data_b64; a digest already includes it")
        return self

    @property
    def message(self) -> tuple[bytes, bool]:
        """The bytes to sign or verify, and whether they are a digest."""
        if self.digest_b64 is not None:
            return self.digest_b64, True
        assert self.data_b64 is not None
        return self.data_b64, False

    @property
    def signer_id_bytes(self) -> bytes | None:
        return self.signer_id.encode() if self.signer_id is not None else None


class SignRequest(_Signed):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"data_b64": _EXAMPLE_DATA, "signer_id": "1234567812345678"},
                {"digest_b64": "ZWvGwrWpUy8L3WrGjGUfhd4R6EKsI9hlK6Vq5IsMFK8="},
            ]
        }
    )

    scheme: SignatureScheme | None = Field(None, description="RSA only; default rsa-pkcs1v15")


class SignResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "signature_b64": _EXAMPLE_SIGNATURE,
                    "key_id": _EXAMPLE_ID,
                    "version": 1,
                    "algorithm": "SM2",
                }
            ]
        }
    )

    signature_b64: str = Field(description="SM2/ECDSA: DER SEQUENCE {r, s}; RSA: raw")
    key_id: str
    version: int
    algorithm: Algorithm

    @classmethod
    def of(cls, result: SignResult) -> SignResponse:
        return cls(
            signature_b64=_b64(result.signature),
            key_id=result.key_id,
            version=result.version,
            algorithm=result.algorithm,
        )


class SignItem(_Signed):
    pass


class SignBatchRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"data_b64": _EXAMPLE_DATA},
                        {"data_b64": "c2Vjb25kIGRvY3VtZW50", "signer_id": "1234567812345678"},
                    ]
                }
            ]
        }
    )

    items: list[SignItem] = Field(min_length=1, max_length=1000)
    scheme: SignatureScheme | None = Field(None, description="RSA only; default rsa-pkcs1v15")


class SignedItem(BaseModel):
    signature_b64: str
    version: int


class SignBatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": _EXAMPLE_ID,
                    "algorithm": "SM2",
                    "items": [{"signature_b64": _EXAMPLE_SIGNATURE, "version": 1}],
                }
            ]
        }
    )

    key_id: str
    algorithm: Algorithm
    items: list[SignedItem] = Field(description="one signature per request item, in order")


class VerifyRequest(_Signed):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data_b64": _EXAMPLE_DATA,
                    "signature_b64": _EXAMPLE_SIGNATURE,
                    "signer_id": "1234567812345678",
                }
            ]
        }
    )

    signature_b64: Base64
    scheme: SignatureScheme | None = Field(None, description="RSA only; default rsa-pkcs1v15")
    version: int | None = Field(
        None, ge=1, description="check this version only; default every non-destroyed one"
    )


class VerifyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"valid": True, "version": 1}, {"valid": False, "version": None}]
        }
    )

    valid: bool
    version: int | None = Field(description="the version whose public key verified it")


class EncryptRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"plaintext_b64": _EXAMPLE_DATA}]})

    plaintext_b64: Base64
    aad_b64: Base64 | None = Field(None, description="SM4 keys: authenticated, not encrypted")


class EncryptResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"key_id": _EXAMPLE_ID, "ciphertext_b64": _EXAMPLE_CIPHERTEXT}]
        }
    )

    key_id: str
    ciphertext_b64: str = Field(description="SM2: GM/T 0009 SM2Cipher DER; RSA: OAEP-SHA256")


class DecryptRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ciphertext_b64": _EXAMPLE_CIPHERTEXT}]}
    )

    ciphertext_b64: Base64
    aad_b64: Base64 | None = Field(None, description="SM4 keys: the aad given to encrypt")
    version: int | None = Field(
        None, ge=1, description="SM2/RSA: try this version only; default every live one"
    )


class DecryptResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"key_id": _EXAMPLE_ID, "plaintext_b64": _EXAMPLE_DATA}]}
    )

    key_id: str
    plaintext_b64: str


class StateRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"state": "suspended", "reason": "holder on leave"},
                {
                    "state": "compromised",
                    "compromised_at": "2026-01-01T08:00:00Z",
                    "reason": "laptop with the token stolen",
                },
            ]
        }
    )

    state: KeyState = Field(description="destroyed schedules destruction (see DELETE)")
    compromised_at: AwareDatetime | None = Field(
        None, description="state compromised only: when it happened (default now)"
    )
    reason: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_REASON,
        description="why (stored as the key's state_reason and audited)",
    )

    @model_validator(mode="after")
    def _compromise_time(self) -> StateRequest:
        if self.compromised_at is not None and self.state is not KeyState.COMPROMISED:
            raise ValueError("compromised_at goes with state compromised")
        return self


class PemResponse(Response):
    media_type = "application/x-pem-file"


# --- routes --------------------------------------------------------------------------

_USE_ERRORS = problem_responses(400, 404, 409)


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyModel,
    summary="Create a key (version 1 is made inside the key store)",
    responses=problem_responses(400),
)
async def create_key(
    body: CreateKeyRequest, principal: KeyAdmin, store: KeyStoreDep, response: Response
) -> KeyModel:
    request = GenerateRequest(label=body.label, algorithm=body.algorithm, purpose=body.purpose)
    info = await run_in_threadpool(store.generate, request, _actor(principal))
    response.headers["Location"] = f"/v1/keys/{info.id}"
    return KeyModel.of(info)


@router.get("/keys", response_model=KeyList, summary="List keys (never their material)")
async def list_keys(principal: KeyAdmin, store: KeyStoreDep) -> KeyList:
    infos = await run_in_threadpool(store.list_keys, _actor(principal))
    return KeyList(keys=[KeyModel.of(i) for i in infos])


@router.get(
    "/keys/{key_id}",
    response_model=KeyModel,
    summary="Show one key",
    responses=problem_responses(404),
)
async def get_key(key_id: KeyId, principal: Reader, store: KeyStoreDep) -> KeyModel:
    info = await run_in_threadpool(store.get, key_id, _actor(principal, key_id))
    return KeyModel.of(info)


@router.get(
    "/keys/{key_id}/public",
    response_class=PemResponse,
    summary="A version's public key as PEM (SubjectPublicKeyInfo); default the primary",
    responses={
        200: {"content": {PemResponse.media_type: {"example": _EXAMPLE_PEM}}},
        **problem_responses(400, 404),
    },
)
async def public_key(
    key_id: KeyId,
    _: PublicReader,
    store: KeyStoreDep,
    version: Annotated[int | None, Query(ge=1, examples=[1])] = None,
) -> PemResponse:
    result = await run_in_threadpool(store.public_key, key_id, version)
    return PemResponse(result.spki_pem, headers={"X-Key-Version": str(result.version)})


@router.post(
    "/keys/{key_id}/sign",
    response_model=SignResponse,
    summary="Sign with the key's primary version",
    responses=_USE_ERRORS,
)
async def sign(
    key_id: KeyId, body: SignRequest, principal: Signer, store: KeyStoreDep
) -> SignResponse:
    data, prehashed = body.message
    result = await run_in_threadpool(
        _sign,
        store,
        key_id,
        _actor(principal, key_id),
        data,
        prehashed,
        body.signer_id_bytes,
        body.scheme,
    )
    return SignResponse.of(result)


@router.post(
    "/keys/{key_id}/sign:batch",
    response_model=SignBatchResponse,
    summary="Sign many messages with one request (one authorisation, one key lookup)",
    responses=_USE_ERRORS,
)
async def sign_batch(
    key_id: KeyId, body: SignBatchRequest, principal: Signer, store: KeyStoreDep
) -> SignBatchResponse:
    actor = _actor(principal, key_id)

    items = [SignInput(*item.message, item.signer_id_bytes) for item in body.items]
    results = await run_in_threadpool(store.sign_many, key_id, items, actor, scheme=body.scheme)
    return SignBatchResponse(
        key_id=key_id,
        algorithm=results[0].algorithm,
        items=[SignedItem(signature_b64=_b64(r.signature), version=r.version) for r in results],
    )


def _sign(
    store: KeyStore,
    key_id: str,
    actor: Actor,
    data: bytes,
    prehashed: bool,
    signer_id: bytes | None,
    scheme: SignatureScheme | None,
) -> SignResult:
    return store.sign(key_id, data, actor, prehashed=prehashed, signer_id=signer_id, scheme=scheme)


@router.post(
    "/keys/{key_id}/verify",
    response_model=VerifyResponse,
    summary="Check a signature against the key's non-destroyed versions",
    responses=_USE_ERRORS,
)
async def verify(
    key_id: KeyId, body: VerifyRequest, principal: Verifier, store: KeyStoreDep
) -> VerifyResponse:
    data, prehashed = body.message
    actor = _actor(principal, key_id)

    def check() -> VerifyResponse:
        try:
            result = store.verify(
                key_id,
                data,
                body.signature_b64,
                actor,
                prehashed=prehashed,
                signer_id=body.signer_id_bytes,
                scheme=body.scheme,
                version=body.version,
            )
        except InvalidSignature:
            return VerifyResponse(valid=False, version=None)
        return VerifyResponse(valid=True, version=result.version)

    return await run_in_threadpool(check)


@router.post(
    "/keys/{key_id}/encrypt",
    response_model=EncryptResponse,
    summary="Encrypt to the key's primary version (SM4-GCM, SM2, RSA-OAEP)",
    responses=_USE_ERRORS,
)
async def encrypt(
    key_id: KeyId, body: EncryptRequest, principal: Signer, store: KeyStoreDep
) -> EncryptResponse:
    ciphertext = await run_in_threadpool(
        lambda: store.encrypt(
            key_id, body.plaintext_b64, _actor(principal, key_id), aad=body.aad_b64 or b""
        )
    )
    return EncryptResponse(key_id=key_id, ciphertext_b64=_b64(ciphertext))


@router.post(
    "/keys/{key_id}/decrypt",
    response_model=DecryptResponse,
    summary="Decrypt with the key (any version whose material still exists)",
    responses=_USE_ERRORS,
)
async def decrypt(
    key_id: KeyId, body: DecryptRequest, principal: Signer, store: KeyStoreDep
) -> DecryptResponse:
    plaintext = await run_in_threadpool(
        lambda: store.decrypt(
            key_id,
            body.ciphertext_b64,
            _actor(principal, key_id),
            aad=body.aad_b64 or b"",
            version=body.version,
        )
    )
    return DecryptResponse(key_id=key_id, plaintext_b64=_b64(plaintext))


@router.post(
    "/keys/{key_id}/rotate",
    response_model=KeyModel,
    summary="Make a new version the primary; older versions still verify and decrypt",
    responses=problem_responses(404, 409),
)
async def rotate(key_id: KeyId, principal: KeyAdminOn, store: KeyStoreDep) -> KeyModel:
    info = await run_in_threadpool(store.rotate, key_id, _actor(principal, key_id))
    return KeyModel.of(info)


@router.post(
    "/keys/{key_id}/state",
    response_model=KeyModel,
    summary="Move the key to another state (SP 800-57); refusals name the reason",
    responses=problem_responses(404, 409),
)
async def change_state(
    key_id: KeyId, body: StateRequest, principal: KeyAdminOn, store: KeyStoreDep
) -> KeyModel:
    actor = _actor(principal, key_id)

    def change() -> KeyInfo:
        if body.state is KeyState.COMPROMISED:
            return store.mark_compromised(
                key_id, actor, compromised_at=body.compromised_at, reason=body.reason
            )
        return store.transition(key_id, body.state, actor, reason=body.reason)

    return KeyModel.of(await run_in_threadpool(change))


@router.delete(
    "/keys/{key_id}",
    status_code=202,
    response_model=KeyModel,
    summary="Schedule the key's destruction (after the waiting period; see destroy_after)",
    responses=problem_responses(404, 409),
)
async def destroy_key(key_id: KeyId, principal: KeyAdminOn, store: KeyStoreDep) -> KeyModel:
    info = await run_in_threadpool(store.schedule_destruction, key_id, _actor(principal, key_id))
    return KeyModel.of(info)
