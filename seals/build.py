"""Strict encoders for v4 (GB/T 38540-2020) seals and signatures.

Only the standard's layout is written: DER, bare OIDs, untagged SES_SealInfo
extDatas, ``[0] EXPLICIT`` TBS_Sign extDatas and timestamp. Each step returns DER
bytes, and the next step embeds those bytes unchanged, so what the signing callback
saw is exactly what ends up in the structure. ``sign`` gets the bytes to sign and
returns a DER SM2 signature made with SM3, Z and the default ID (what
``SM2PrivateKey.sign`` and the keystore's ``sign(key_id, data)`` produce).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from asn1crypto import core

from seals.asn1 import common, v4
from seals.parse import CertDigest, ExtensionData
from trust import oids
from trust.errors import InvalidLength, ValidationFailed
from trust.sm2.encoding import der_to_raw
from trust.sm3 import DIGEST_SIZE

Signer = Callable[[bytes], bytes]
Stamper = Callable[[bytes], bytes]

VERSION = 4
_V = TypeVar("_V", bound=core.Asn1Value)


def build_seal_info(
    *,
    es_id: str,
    vendor_id: str,
    seal_type: int,
    name: str,
    certificates: Sequence[bytes] = (),
    cert_digests: Sequence[CertDigest] = (),
    create_date: datetime,
    valid_start: datetime,
    valid_end: datetime,
    picture_type: str,
    picture: bytes,
    picture_width: int,
    picture_height: int,
    extensions: Sequence[ExtensionData] = (),
) -> bytes:
    """DER ``SES_SealInfo``. Exactly one of ``certificates`` (signer certificates, DER:
    certListType 1) and ``cert_digests`` (certListType 2) must be given."""
    if bool(certificates) == bool(cert_digests):
        raise ValidationFailed("give either signer certificates or certificate digests")
    create_date, valid_start, valid_end = (_time(t) for t in (create_date, valid_start, valid_end))
    if not valid_start <= valid_end:
        raise ValidationFailed("validStart is after validEnd")
    if picture_width <= 0 or picture_height <= 0:
        raise ValidationFailed("picture width and height must be positive (mm)")
    cert_list: core.Asn1Value
    if certificates:
        cert_list = common.CertInfoList(list(certificates))
    else:
        cert_list = common.CertDigestList(
            [{"type": d.algorithm, "value": d.value} for d in cert_digests]
        )
    value: dict[str, object] = {
        "header": {"id": "ES", "version": VERSION, "vid": vendor_id},
        "es_id": es_id,
        "property": {
            "type": seal_type,
            "name": name,
            "cert_list_type": 1 if certificates else 2,
            "cert_list": cert_list,
            "create_date": create_date,
            "valid_start": valid_start,
            "valid_end": valid_end,
        },
        "picture": {
            "type": picture_type,
            "data": picture,
            "width": picture_width,
            "height": picture_height,
        },
    }
    if extensions:
        value["ext_datas"] = _extensions(extensions)
    return _encode(v4.SESSealInfo, value, "SES_SealInfo")


def build_seal(info: bytes, maker_cert_der: bytes, sign: Signer) -> bytes:
    """DER ``SESeal``: the maker signs DER(SES_SealInfo) (``info``) with SM3withSM2."""
    parsed = _strict(v4.SESSealInfo, info, "SES_SealInfo")
    if parsed["header"]["version"].native != VERSION:
        raise ValidationFailed("SES_SealInfo header version must be 4")
    value: dict[str, object] = {
        "e_seal_info": parsed,
        "cert": maker_cert_der,
        "sign_alg_id": common.SignAlgorithm(name="oid", value=oids.SM3_WITH_SM2),
        "signed_value": _signature(sign(info)),
    }
    return _encode(v4.SESeal, value, "SESeal")


def build_tbs_sign(
    *,
    seal: bytes,
    time_info: datetime,
    data_hash: bytes,
    property_info: str,
    extensions: Sequence[ExtensionData] = (),
) -> bytes:
    """DER ``TBS_Sign`` around a v4 seal in DER (embedded as is); ``data_hash`` is the SM3
    of the original (for OFD, of Signature.xml)."""
    if len(data_hash) != DIGEST_SIZE:
        raise InvalidLength(f"dataHash is an SM3 digest of {DIGEST_SIZE} bytes")
    value: dict[str, object] = {
        "version": VERSION,
        "eseal": _v4_seal(seal),
        "time_info": _time(time_info),
        "data_hash": data_hash,
        "property_info": property_info,
    }
    if extensions:
        value["ext_datas"] = _extensions(extensions)
    return _encode(v4.TBSSign, value, "TBS_Sign")


def build_signature(
    tbs: bytes, signer_cert_der: bytes, sign: Signer, timestamp: Stamper | None = None
) -> bytes:
    """DER ``SES_Signature``: the signer signs DER(TBS_Sign). ``timestamp`` gets the
    signature value (the BIT STRING content) and returns a timestamp token for it;
    a callback because the value exists only once signed."""
    parsed = _strict(v4.TBSSign, tbs, "TBS_Sign")
    if parsed["version"].native != VERSION:
        raise ValidationFailed("TBS_Sign version must be 4")
    signature = _signature(sign(tbs))
    value: dict[str, object] = {
        "to_sign": parsed,
        "cert": signer_cert_der,
        "signature_alg_id": common.SignAlgorithm(name="oid", value=oids.SM3_WITH_SM2),
        "signature": signature,
    }
    if timestamp is not None:
        value["time_stamp"] = timestamp(signature)
    return _encode(v4.SESSignature, value, "SES_Signature")


# --- helpers ---------------------------------------------------------------------


def _time(value: datetime) -> datetime:
    """UTC, whole seconds: GeneralizedTime then encodes as YYYYMMDDHHMMSSZ."""
    if value.tzinfo is None:
        raise ValidationFailed("times must carry a time zone")
    return value.astimezone(UTC).replace(microsecond=0)


def _extensions(extensions: Sequence[ExtensionData]) -> common.ExtensionDatas:
    return common.ExtensionDatas(
        [{"extn_id": e.oid, "critical": e.critical, "extn_value": e.value} for e in extensions]
    )


def _signature(value: bytes) -> bytes:
    der_to_raw(value)  # the callback must return a DER SEQUENCE{r, s}
    return value


def _encode(spec: type[_V], value: dict[str, object], what: str) -> bytes:
    try:
        der: bytes = spec(value).dump(force=True)
    # asn1crypto rejects values that do not fit the type (non-ASCII in an IA5String,
    # a bad OID, ...) with ValueError, TypeError or UnicodeError.
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(f"{what}: {str(exc).splitlines()[0]}") from None
    return der


def _v4_seal(seal: bytes) -> v4.SESeal:
    parsed = _strict(v4.SESeal, seal, "SESeal")
    if parsed["e_seal_info"]["header"]["version"].native != VERSION:
        raise ValidationFailed("only v4 seals can be embedded in a v4 TBS_Sign")
    return parsed


def _strict(spec: type[_V], data: bytes, what: str) -> _V:
    """``data`` parsed as ``spec``, which must be canonical DER: it is embedded unchanged,
    and a re-encoding would no longer match the signature made over it."""
    try:
        value = common.parse_all(spec.load(data, strict=True))
        canonical = value.dump(force=True) == data
    # asn1crypto reports bad input with assorted built-in exceptions.
    except Exception:
        raise ValidationFailed(f"{what} does not parse") from None
    if not canonical:
        raise ValidationFailed(f"{what} is not canonical DER")
    return value
