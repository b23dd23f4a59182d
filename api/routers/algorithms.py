"""The algorithm catalogue (public): what can be signed, hashed and encrypted, and with
which SM2 engine."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.errors import problem_responses
from api.security import public
from trust.algorithms import catalogue
from trust.keys import KeyAlgorithm, SignatureScheme
from trust.sm2.select import available_backends, get_backend

router = APIRouter(prefix="/v1", tags=["algorithms"])

_EXAMPLE: dict[str, Any] = {
    "key_algorithms": ["sm2", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"],
    "signature_algorithms": [
        {
            "name": "sm2-with-sm3",
            "oid": "1.2.156.10197.1.501",
            "key_algorithms": ["sm2"],
            "hash": "sm3",
            "scheme": None,
        },
        {
            "name": "rsassa-pss",
            "oid": "1.2.840.113549.1.1.10",
            "key_algorithms": ["rsa-2048", "rsa-3072", "rsa-4096"],
            "hash": "sha256",
            "scheme": "rsa-pss",
        },
    ],
    "encryption_algorithms": [
        {"name": "sm2-encrypt", "oid": "1.2.156.10197.1.301.3", "key_algorithms": ["sm2"]}
    ],
    "hash_algorithms": [{"name": "sm3", "oid": "1.2.156.10197.1.401", "digest_size": 32}],
    "mac_algorithms": [{"name": "hmac-sm3", "oid": "1.2.156.10197.1.401.2", "digest_size": 32}],
    "cipher_algorithms": [
        {
            "name": "sm4-gcm",
            "oid": "1.2.156.10197.1.104.8",
            "key_size": 16,
            "iv_size": 12,
            "authenticated": True,
            "note": "",
        }
    ],
    "sm2_backend": "openssl",
    "sm2_backends_available": ["openssl", "pure"],
}


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class SignatureAlgorithmModel(_Model):
    name: str
    oid: str = Field(description="dotted OID used in certificates, CMS and seals")
    key_algorithms: list[KeyAlgorithm]
    hash: str
    scheme: SignatureScheme | None = Field(description="the RSA padding; null for SM2 and ECDSA")


class EncryptionAlgorithmModel(_Model):
    name: str
    oid: str
    key_algorithms: list[KeyAlgorithm]


class HashAlgorithmModel(_Model):
    name: str
    oid: str
    digest_size: int = Field(description="bytes")


class CipherAlgorithmModel(_Model):
    name: str
    oid: str | None
    key_size: int = Field(description="bytes")
    iv_size: int = Field(description="IV, initial counter block or nonce, in bytes; 0 for ECB")
    authenticated: bool
    note: str


class AlgorithmsResponse(_Model):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    key_algorithms: list[KeyAlgorithm]
    signature_algorithms: list[SignatureAlgorithmModel]
    encryption_algorithms: list[EncryptionAlgorithmModel]
    hash_algorithms: list[HashAlgorithmModel]
    mac_algorithms: list[HashAlgorithmModel]
    cipher_algorithms: list[CipherAlgorithmModel]
    sm2_backend: str = Field(description="the SM2 engine this deployment is configured to use")
    sm2_backends_available: list[str] = Field(description="SM2 engines that load on this host")


@router.get(
    "/algorithms",
    summary="Algorithms offered and the SM2 engine in use",
    response_model=AlgorithmsResponse,
    dependencies=[public()],
    responses=problem_responses(503),
)
async def list_algorithms(settings: SettingsDep) -> AlgorithmsResponse:
    def build() -> AlgorithmsResponse:
        # Loading an engine may open libcrypto: keep it off the event loop.
        backend = get_backend(settings.sm2_backend, settings.libcrypto_path)
        found = catalogue(backend, available_backends(settings.libcrypto_path))
        return AlgorithmsResponse.model_validate(found)

    return await run_in_threadpool(build)
