"""Parsing seals and signatures of every generation into typed, immutable results.

Tolerant on input (the variations of standards.md §1: tagged or untagged extDatas
and timestamps, an AlgorithmIdentifier in place of a bare OID, UTCTime or
GeneralizedTime and OCTET STRING for BIT STRING in v1, unparseable v1 extensions),
each tolerated variation named in ``deviations``. Anything else that does not fit
the structure raises ``MalformedASN1``; an unknown generation raises
``UnsupportedSealVersion``. No other exception escapes.

The signed parts are kept as the exact bytes found in the input, never re-encoded,
because a re-encoding (of an explicit DEFAULT, say) would no longer verify.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from functools import lru_cache
from typing import TypeVar

from asn1crypto import core

from seals.asn1 import raw, v1, v4, v5
from seals.asn1.common import (
    CertDigestList,
    CertInfoList,
    ExtensionDatas,
    SignAlgorithm,
    parse_all,
)
from seals.detect import SealVersion, detect_seal_version, detect_signature_version
from trust.errors import MalformedASN1, TrustError

# Times written without a zone (v1 "yyyy-MM-dd HH:mm:ss" strings, GeneralizedTime
# without "Z") are the producer's local time; GM/T producers run on China Standard Time.
PRODUCER_LOCAL_TIME = timezone(timedelta(hours=8), "CST")

_V1_TIME_STRING = re.compile(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


class CertListType(IntEnum):
    CERTIFICATES = 1
    DIGESTS = 2


@dataclass(frozen=True)
class SealHeader:
    id: str
    version: int
    vendor_id: str


@dataclass(frozen=True)
class CertDigest:
    algorithm: str  # the name as written, e.g. "SM3"
    value: bytes


@dataclass(frozen=True)
class SealProperty:
    type: int
    name: str
    cert_list_type: CertListType
    certificates: tuple[bytes, ...] = field(repr=False)  # type 1 (and every v1 seal)
    cert_digests: tuple[CertDigest, ...]  # type 2
    create_date: datetime
    valid_start: datetime
    valid_end: datetime


@dataclass(frozen=True)
class SealPicture:
    type: str
    data: bytes = field(repr=False)
    width: int  # millimetres
    height: int


@dataclass(frozen=True)
class ExtensionData:
    oid: str
    value: bytes
    critical: bool = False


@dataclass(frozen=True)
class SealInfo:
    header: SealHeader
    es_id: str
    property: SealProperty
    picture: SealPicture
    extensions: tuple[ExtensionData, ...]


@dataclass(frozen=True)
class ParsedSeal:
    version: SealVersion
    info: SealInfo
    maker_cert: bytes = field(repr=False)  # DER X.509 of the seal maker
    signature_algorithm: str  # dotted OID
    signature: bytes = field(repr=False)  # DER SEQUENCE{r, s}
    timestamp: bytes | None = field(repr=False)  # v5 only
    # What the maker signed: DER(SES_SealInfo) as found (v4, v5), or the v1 rule's
    # SEQUENCE{sealInfo, cert, signatureAlgorithm} built around the elements as found.
    maker_signed_bytes: bytes = field(repr=False)
    # v4/v5 only: the v1 rule's bytes, tried when the standard bytes do not verify.
    maker_signed_bytes_fallback: bytes | None = field(repr=False)
    der: bytes = field(repr=False)
    deviations: tuple[str, ...]


@dataclass(frozen=True)
class ParsedSealSignature:
    version: SealVersion
    tbs_version: int
    seal: ParsedSeal
    time_info: bytes = field(repr=False)  # as written: GeneralizedTime text, v1 string or token
    signing_time: datetime | None  # None for a v1 timeInfo that is not a time string
    data_hash: bytes
    property_info: str
    extensions: tuple[ExtensionData, ...]
    signer_cert: bytes = field(repr=False)
    signature_algorithm: str
    signature: bytes = field(repr=False)
    timestamp: bytes | None = field(repr=False)
    signer_signed_bytes: bytes = field(repr=False)  # DER(TBS_Sign) as found
    der: bytes = field(repr=False)
    deviations: tuple[str, ...]


def parse_seal(data: bytes) -> ParsedSeal:
    """An ``SESeal`` of any generation."""
    version = detect_seal_version(data)
    with _malformed(f"{version.name} SESeal"):
        return _SEAL_PARSERS[version](data)


def parse_signature(data: bytes) -> ParsedSealSignature:
    """An ``SES_Signature`` of any generation, with its embedded seal parsed as well."""
    version = detect_signature_version(data)
    with _malformed(f"{version.name} SES_Signature"):
        if version is SealVersion.V1:
            return _signature_v1(data)
        return _signature_v4_family(data, version)


# --- seals -----------------------------------------------------------------------


@lru_cache(maxsize=64)  # keys are whole seals (pictures up to 256 KiB)
def _seal_v4_family(data: bytes, version: SealVersion) -> ParsedSeal:
    elements = raw.children(data)
    if version is SealVersion.V4 and len(elements) != 4:
        raise MalformedASN1(f"a v4 SESeal has 4 elements, this one has {len(elements)}")
    spec: type[core.Sequence] = v4.SESeal if version is SealVersion.V4 else v5.SESeal
    seal = _load(spec, data)
    deviations: list[str] = []
    timestamp = None
    if version is SealVersion.V5:
        timestamp = _tagged_or_not(seal, "time_stamp", "time_stamp_untagged", deviations)
    return ParsedSeal(
        version=version,
        info=_seal_info_v4(seal["e_seal_info"], deviations),
        maker_cert=seal["cert"].native,
        signature_algorithm=_algorithm(seal["sign_alg_id"], deviations),
        signature=seal["signed_value"].native,
        timestamp=None if timestamp is None else timestamp.native,
        maker_signed_bytes=elements[0],
        maker_signed_bytes_fallback=raw.sequence(elements[:3]),
        der=data,
        deviations=tuple(deviations),
    )


def _seal_v1(data: bytes) -> ParsedSeal:
    seal = _load(v1.SESeal, data)
    info_der, sign_info_der = raw.children(data)
    cert_der, alg_der, _ = raw.children(sign_info_der)
    deviations: list[str] = []
    sign_info = seal["sign_info"]
    return ParsedSeal(
        version=SealVersion.V1,
        info=_seal_info_v1(seal["e_seal_info"], info_der, deviations),
        maker_cert=sign_info["cert"].native,
        signature_algorithm=_algorithm(sign_info["signature_algorithm"], deviations),
        signature=sign_info["sign_data"].native,
        timestamp=None,
        maker_signed_bytes=raw.sequence([info_der, cert_der, alg_der]),
        maker_signed_bytes_fallback=None,
        der=data,
        deviations=tuple(deviations),
    )


_SEAL_PARSERS: dict[SealVersion, Callable[[bytes], ParsedSeal]] = {
    SealVersion.V1: _seal_v1,
    SealVersion.V4: lambda data: _seal_v4_family(data, SealVersion.V4),
    SealVersion.V5: lambda data: _seal_v4_family(data, SealVersion.V5),
}


def _seal_info_v4(info: core.Sequence, deviations: list[str]) -> SealInfo:
    prop = info["property"]
    list_type = prop["cert_list_type"].native
    certificates: tuple[bytes, ...] = ()
    digests: tuple[CertDigest, ...] = ()
    if list_type == CertListType.CERTIFICATES:
        certificates = tuple(parse_all(prop["cert_list"].parse(CertInfoList)).native)
    elif list_type == CertListType.DIGESTS:
        parsed = parse_all(prop["cert_list"].parse(CertDigestList))
        digests = tuple(CertDigest(d["type"].native, d["value"].native) for d in parsed)
    else:
        raise MalformedASN1(f"certListType {list_type} is neither 1 (certificates) nor 2")
    ext = _tagged_or_not(info, "ext_datas", "ext_datas_tagged", deviations)
    return SealInfo(
        header=_header(info["header"], deviations),
        es_id=info["es_id"].native,
        property=SealProperty(
            type=prop["type"].native,
            name=prop["name"].native,
            cert_list_type=CertListType(list_type),
            certificates=certificates,
            cert_digests=digests,
            create_date=_time(prop["create_date"], deviations),
            valid_start=_time(prop["valid_start"], deviations),
            valid_end=_time(prop["valid_end"], deviations),
        ),
        picture=_picture(info["picture"]),
        extensions=_extensions(ext),
    )


def _seal_info_v1(info: core.Sequence, info_der: bytes, deviations: list[str]) -> SealInfo:
    prop = info["property"]
    names = ("create_date", "valid_start", "valid_end")
    times = [_v1_time(prop[name], deviations) for name in names]
    return SealInfo(
        header=_header(info["header"], deviations),
        es_id=info["es_id"].native,
        property=SealProperty(
            type=prop["type"].native,
            name=prop["name"].native,
            cert_list_type=CertListType.CERTIFICATES,
            certificates=tuple(prop["cert_list"].native),
            cert_digests=(),
            create_date=times[0],
            valid_start=times[1],
            valid_end=times[2],
        ),
        picture=_picture(info["picture"]),
        extensions=_v1_extensions(raw.children(info_der)[4:], deviations),
    )


def _header(header: core.Sequence, deviations: list[str]) -> SealHeader:
    if header["id"].native != "ES":
        deviations.append(f"SES_Header.id is {header['id'].native!r}, not 'ES'")
    return SealHeader(header["id"].native, header["version"].native, header["vid"].native)


def _picture(picture: core.Sequence) -> SealPicture:
    return SealPicture(
        type=picture["type"].native,
        data=picture["data"].native,
        width=picture["width"].native,
        height=picture["height"].native,
    )


def _extensions(ext: core.Asn1Value | None) -> tuple[ExtensionData, ...]:
    if ext is None:
        return ()
    return tuple(
        ExtensionData(e["extn_id"].dotted, e["extn_value"].native, e["critical"].native)
        for e in ext
    )


def _v1_extensions(elements: list[bytes], deviations: list[str]) -> tuple[ExtensionData, ...]:
    """From the raw element after the picture, if any (asn1crypto's Any cannot even dump
    an element it does not recognise, such as a context tag)."""
    if not elements:
        return ()
    (der,) = elements  # the typed parse has already refused a sixth element
    try:
        if raw.identifier(der) == 0xA0:  # [0] EXPLICIT: unwrap
            (der,) = raw.children(der)
        return _extensions(parse_all(ExtensionDatas.load(der, strict=True)))
    # ofdrw ignores v1 extension data it cannot read, whatever the reason.
    except Exception:
        deviations.append("v1 extDatas do not parse and were ignored")
        return ()


# --- signatures ------------------------------------------------------------------


def _signature_v4_family(data: bytes, version: SealVersion) -> ParsedSealSignature:
    elements = raw.children(data)
    tbs_der = elements[0]
    spec: type[core.Sequence] = v4.SESSignature if version is SealVersion.V4 else v5.SESSignature
    signature = _load_signature(spec, data)
    tbs = signature["to_sign"]
    deviations: list[str] = []
    ext = _tagged_or_not(tbs, "ext_datas", "ext_datas_untagged", deviations)
    timestamp = _tagged_or_not(signature, "time_stamp", "time_stamp_untagged", deviations)
    seal = _seal_v4_family(raw.children(tbs_der)[1], version)
    return ParsedSealSignature(
        version=version,
        tbs_version=tbs["version"].native,
        seal=seal,
        time_info=tbs["time_info"].contents,
        signing_time=_time(tbs["time_info"], deviations),
        data_hash=tbs["data_hash"].native,
        property_info=tbs["property_info"].native,
        extensions=_extensions(ext),
        signer_cert=signature["cert"].native,
        signature_algorithm=_algorithm(signature["signature_alg_id"], deviations),
        signature=signature["signature"].native,
        timestamp=None if timestamp is None else timestamp.native,
        signer_signed_bytes=tbs_der,
        der=data,
        deviations=tuple(deviations),
    )


def _signature_v1(data: bytes) -> ParsedSealSignature:
    signature = _load(v1.SESSignature, data)
    tbs_der = raw.children(data)[0]
    tbs = signature["to_sign"]
    deviations: list[str] = []
    time_info = _bits_or_octets(tbs["time_info"], "timeInfo", deviations)
    signing_time = None
    if _V1_TIME_STRING.fullmatch(time_info):
        naive = datetime.strptime(time_info.decode("ascii"), "%Y-%m-%d %H:%M:%S")
        signing_time = naive.replace(tzinfo=PRODUCER_LOCAL_TIME).astimezone(UTC)
    return ParsedSealSignature(
        version=SealVersion.V1,
        tbs_version=tbs["version"].native,
        seal=_seal_v1(raw.children(tbs_der)[1]),
        time_info=time_info,
        signing_time=signing_time,
        data_hash=_bits_or_octets(tbs["data_hash"], "dataHash", deviations),
        property_info=tbs["property_info"].native,
        extensions=(),
        signer_cert=tbs["cert"].native,
        signature_algorithm=_algorithm(tbs["signature_algorithm"], deviations),
        signature=signature["signature"].native,
        timestamp=None,
        signer_signed_bytes=tbs_der,
        der=data,
        deviations=tuple(deviations),
    )


# --- helpers ---------------------------------------------------------------------

_V = TypeVar("_V", bound=core.Asn1Value)


@contextmanager
def _malformed(what: str) -> Iterator[None]:
    """Turn whatever asn1crypto raises on bad input into MalformedASN1 naming ``what``."""
    try:
        yield
    except TrustError:
        raise
    # asn1crypto reports bad input with assorted built-in exceptions (ValueError,
    # TypeError, KeyError, OverflowError, ...), and hostile input can reach others.
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise MalformedASN1(f"{what} does not parse: {reason}") from None


def _load(spec: type[_V], data: bytes) -> _V:
    return parse_all(spec.load(data, strict=True))


def _load_signature(spec: type[core.Sequence], data: bytes) -> core.Sequence:
    """A v4/v5 SES_Signature parsed in full except its embedded seal, which
    ``_seal_v4_family`` parses (once per seal: verifiers see one seal in many stamps)."""
    signature = spec.load(data, strict=True)
    if len(signature) != len(signature._fields):
        raise ValueError(f"{spec.__name__} has elements its definition lacks")
    for name, *_ in signature._fields:
        if name != "to_sign":
            parse_all(signature[name])
            continue
        tbs = signature[name]
        if len(tbs) != len(tbs._fields):
            raise ValueError(f"{type(tbs).__name__} has elements its definition lacks")
        for field_name, *_ in tbs._fields:
            if field_name != "eseal":
                parse_all(tbs[field_name])
    return signature


def _tagged_or_not(
    value: core.Sequence, standard: str, alternative: str, deviations: list[str]
) -> core.Asn1Value | None:
    """The one of two optional fields that differ only by tagging, or None."""
    first, second = value[standard], value[alternative]
    present_first = not isinstance(first, core.Void)
    present_second = not isinstance(second, core.Void)
    if present_first and present_second:
        raise MalformedASN1(f"{type(value).__name__} has {standard} twice")
    if present_second:
        deviations.append(f"{type(value).__name__}.{standard} is tagged differently from ofdrw")
        return second
    return first if present_first else None


def _algorithm(value: SignAlgorithm, deviations: list[str]) -> str:
    if value.name == "oid":
        dotted: str = value.chosen.dotted
        return dotted
    alg = value.chosen
    params = alg["parameters"]
    if not isinstance(params, core.Void) and params.dump() != b"\x05\x00":
        raise MalformedASN1("signature algorithm parameters must be absent or NULL")
    deviations.append("signature algorithm given as an AlgorithmIdentifier, not a bare OID")
    dotted = alg["algorithm"].dotted
    return dotted


def _time(value: core.Asn1Value, deviations: list[str]) -> datetime:
    native = value.native
    if not isinstance(native, datetime):
        raise MalformedASN1(f"time {value.contents!r} is out of range")
    if native.tzinfo is None:
        deviations.append("time without zone read as China Standard Time")
        native = native.replace(tzinfo=PRODUCER_LOCAL_TIME)
    return native.astimezone(UTC)


def _v1_time(value: v1.Time, deviations: list[str]) -> datetime:
    if value.name == "generalized_time":
        deviations.append("v1 time written as GeneralizedTime instead of UTCTime")
    return _time(value.chosen, deviations)


def _bits_or_octets(value: v1.BitsOrOctets, what: str, deviations: list[str]) -> bytes:
    if value.name == "octet_string":
        deviations.append(f"v1 {what} written as OCTET STRING instead of BIT STRING")
    octets: bytes = value.chosen.native
    return octets
