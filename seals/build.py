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
from functools import lru_cache
from typing import Any, TypeVar

from asn1crypto import core, parser

from seals.asn1 import common, raw, v4
from seals.parse import CertDigest, ExtensionData
from trust import oids
from trust.errors import InvalidLength, ValidationFailed
from trust.sm2.encoding import der_to_raw
from trust.sm3 import DIGEST_SIZE

Signer = Callable[[bytes], bytes]
Stamper = Callable[[bytes], bytes]

VERSION = 4
_VERSION_DER = b"\x02\x01\x04"
_SM3_WITH_SM2_DER = core.ObjectIdentifier(oids.SM3_WITH_SM2).dump()
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
    _check_v4_seal(seal)
    # Assembled from encoded parts: the seal is embedded byte for byte, and encoding the
    # whole structure again through asn1crypto (for every stamp) costs milliseconds.
    parts = [
        _VERSION_DER,
        seal,
        core.GeneralizedTime(_time(time_info)).dump(),
        _bit_string(data_hash),
        _encode(core.IA5String, property_info, "propertyInfo"),
    ]
    if extensions:
        parts.append(parser.emit(2, 1, 0, _extensions(extensions).dump()))  # [0] EXPLICIT
    return raw.sequence(parts)


def build_signature(
    tbs: bytes, signer_cert_der: bytes, sign: Signer, timestamp: Stamper | None = None
) -> bytes:
    """DER ``SES_Signature``: the signer signs DER(TBS_Sign). ``timestamp`` gets the
    signature value (the BIT STRING content) and returns a timestamp token for it;
    a callback because the value exists only once signed."""
    _check_tbs(tbs)
    signature = _signature(sign(tbs))
    parts = [tbs, parser.emit(0, 0, 4, signer_cert_der), _SM3_WITH_SM2_DER, _bit_string(signature)]
    if timestamp is not None:
        parts.append(parser.emit(2, 1, 0, _bit_string(timestamp(signature))))  # [0] EXPLICIT
    return raw.sequence(parts)


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


def _encode(spec: type[_V], value: Any, what: str) -> bytes:
    try:
        der: bytes = spec(value).dump(force=True)
    # asn1crypto rejects values that do not fit the type (non-ASCII in an IA5String,
    # a bad OID, ...) with ValueError, TypeError or UnicodeError.
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(f"{what}: {str(exc).splitlines()[0]}") from None
    return der


@lru_cache(maxsize=64)  # keys are whole seals (pictures up to 256 KiB)
def _check_v4_seal(seal: bytes) -> None:
    """A v4 SESeal in canonical DER; remembered, since one seal is embedded in many stamps."""
    parsed = _strict(v4.SESeal, seal, "SESeal")
    if parsed["e_seal_info"]["header"]["version"].native != VERSION:
        raise ValidationFailed("only v4 seals can be embedded in a v4 TBS_Sign")


def _check_tbs(tbs: bytes) -> None:
    """The shape of a v4 TBS_Sign (version 4, a v4 seal, time, hash, propertyInfo, optional
    [0] extensions), element by element: as strict as a full parse for what the builder
    makes, at a fraction of its cost."""
    try:
        elements = raw.children(tbs)
        canonical = raw.identifier(tbs) == raw.TAG_SEQUENCE and raw.sequence(elements) == tbs
    except ValueError:
        raise ValidationFailed("TBS_Sign does not parse") from None
    tags = [raw.identifier(e) for e in elements]
    if not canonical or tags[:5] != [0x02, 0x30, 0x18, 0x03, 0x16] or tags[5:] not in ([], [0xA0]):
        raise ValidationFailed("TBS_Sign is not a canonical v4 TBS_Sign")
    if elements[0] != _VERSION_DER:
        raise ValidationFailed("TBS_Sign version must be 4")
    _check_v4_seal(elements[1])


def _bit_string(value: bytes) -> bytes:
    return parser.emit(0, 0, 3, b"\x00" + value)  # no unused bits


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
