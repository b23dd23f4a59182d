"""RFC 3161 messages: parsing TimeStampReq, building TSTInfo and TimeStampResp.

A refused request is a ``TrustError`` whose ``extra["failure_info"]`` names the
PKIFailureInfo bit (asn1crypto's snake_case names, e.g. ``bad_alg``); the service
turns it into a rejection response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from asn1crypto import algos, cms, core, parser, tsp, x509

from timestamp import der
from trust.cms.algorithms import DIGEST_OIDS, digest_size
from trust.cms.asn1 import load_strict
from trust.errors import (
    BadRequest,
    InvalidLength,
    MalformedASN1,
    TsaPolicyInvalid,
    UnsupportedAlgorithm,
)

BAD_ALG = "bad_alg"
BAD_REQUEST = "bad_request"
BAD_DATA_FORMAT = "bad_data_format"
TIME_NOT_AVAILABLE = "time_not_available"
UNACCEPTED_POLICY = "unaccepted_policy"
UNACCEPTED_EXTENSION = "unaccepted_extensions"  # asn1crypto's name for unacceptedExtension
SYSTEM_FAILURE = "system_failure"

IMPRINT_ALGORITHMS = {oid: name for name, oid in DIGEST_OIDS.items()}
# DER AlgorithmIdentifier of each accepted digest as asn1crypto writes it (NULL parameters
# for SHA-2, none for SM3); and every form the plain-DER reader accepts (absent or NULL
# parameters), to the digest's name.
_IMPRINT_DER = {
    name: algos.DigestAlgorithm({"algorithm": oid}).dump() for name, oid in DIGEST_OIDS.items()
}
_IMPRINT_ALGORITHM_DER = {
    der.tlv(der.SEQUENCE, core.ObjectIdentifier(oid).dump() + params): name
    for name, oid in DIGEST_OIDS.items()
    for params in (b"", b"\x05\x00")
}
_VERSION_1 = core.Integer(1).dump()


class TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp. asn1crypto's own declares the token mandatory, but a
    rejection carries none (``timeStampToken TimeStampToken OPTIONAL``)."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True)
class TimestampRequest:
    hash_algorithm: str  # sm3, sha256, sha384, sha512
    digest: bytes
    policy: str | None
    nonce: int | None
    cert_req: bool
    message_imprint: bytes  # DER MessageImprint, echoed unchanged into TSTInfo


# A dotted OID: arcs without leading zeros; under 0 and 1 the second arc is below 40.
_OID = re.compile(r"^(?:[01]\.(?:[0-9]|[1-3][0-9])|2\.(?:0|[1-9][0-9]*))(?:\.(?:0|[1-9][0-9]*))*$")
MAX_POLICY = 128  # the width of the policy columns


def check_policy(oid: str) -> str:
    """``oid`` if it is a dotted object identifier a TSA policy can be (else ``BadRequest``)."""
    if len(oid) > MAX_POLICY or not _OID.match(oid):
        raise TsaPolicyInvalid(f"TSA policy {oid[:MAX_POLICY]!r} is not a dotted object identifier")
    return oid


def check_imprint(hash_algorithm: str, digest: bytes) -> None:
    if hash_algorithm not in DIGEST_OIDS:
        raise UnsupportedAlgorithm(
            f"hash algorithm {hash_algorithm} is not accepted", failure_info=BAD_ALG
        )
    if len(digest) != digest_size(hash_algorithm):
        raise InvalidLength(
            f"a {hash_algorithm} digest has {digest_size(hash_algorithm)} bytes, not {len(digest)}",
            failure_info=BAD_DATA_FORMAT,
        )


def message_imprint(hash_algorithm: str, digest: bytes) -> bytes:
    """DER MessageImprint."""
    return der.tlv(der.SEQUENCE, _IMPRINT_DER[hash_algorithm] + der.tlv(der.OCTET_STRING, digest))


def parse_request(data: bytes) -> TimestampRequest:
    """The request, or a ``TrustError`` with the failInfo that refuses it."""
    return _parse_plain(data) or _parse_any(data)


def _parse_plain(data: bytes) -> TimestampRequest | None:
    """The common case read in one pass: DER, version 1, an accepted digest of the right
    size, no extensions. None for anything else (``_parse_any`` decides it), so this path
    never accepts what ``_parse_any`` would refuse."""
    top = der.read(data, 0, len(data))
    if top is None or top[0] != der.SEQUENCE or top[2] != len(data):
        return None
    _, pos, end = top
    if data[pos : pos + 3] != b"\x02\x01\x01":  # version INTEGER 1
        return None
    imprint = der.read(data, pos + 3, end)
    if imprint is None or imprint[0] != der.SEQUENCE:
        return None
    algorithm = der.read(data, imprint[1], imprint[2])
    if algorithm is None or algorithm[0] != der.SEQUENCE:
        return None
    name = _IMPRINT_ALGORITHM_DER.get(data[imprint[1] : algorithm[2]])
    hashed = der.read(data, algorithm[2], imprint[2])
    if name is None or hashed is None or hashed[0] != der.OCTET_STRING or hashed[2] != imprint[2]:
        return None
    digest = data[hashed[1] : hashed[2]]
    if len(digest) != digest_size(name):
        return None
    message_imprint, pos = data[pos + 3 : imprint[2]], imprint[2]
    policy = nonce = None
    cert_req = False
    field = der.read(data, pos, end)
    if field is not None and field[0] == der.OBJECT_IDENTIFIER:
        policy = _dotted(data[pos : field[2]])
        if policy is None:
            return None
        pos = field[2]
        field = der.read(data, pos, end)
    if field is not None and field[0] == der.INTEGER:
        nonce = der.read_integer(data, field[1], field[2])
        if nonce is None:
            return None
        pos = field[2]
    if data[pos : pos + 3] == b"\x01\x01\xff":  # certReq TRUE (FALSE is the DEFAULT, left out)
        cert_req = True
        pos += 3
    if pos != end:  # extensions, or anything not plain DER
        return None
    return TimestampRequest(name, digest, policy, nonce, cert_req, message_imprint)


@lru_cache(maxsize=64)
def _dotted(oid_der: bytes) -> str | None:
    """The dotted form of a DER OBJECT IDENTIFIER, as asn1crypto reads it."""
    try:
        return str(core.ObjectIdentifier.load(oid_der, strict=True).dotted)
    except Exception:  # asn1crypto's assorted errors: leave the request to _parse_any
        return None


def _parse_any(data: bytes) -> TimestampRequest:
    try:
        req = load_strict(tsp.TimeStampReq, data, "TimeStampReq")
    except MalformedASN1 as exc:
        raise MalformedASN1(exc.detail, failure_info=BAD_DATA_FORMAT) from None
    if req["version"].native != "v1":
        raise BadRequest("TimeStampReq version must be 1", failure_info=BAD_DATA_FORMAT)
    imprint = req["message_imprint"]
    algorithm = imprint["hash_algorithm"]
    name = IMPRINT_ALGORITHMS.get(algorithm["algorithm"].dotted)
    # Parameters must be absent or NULL for every digest we accept.
    if name is None or algorithm["parameters"].native is not None:
        raise UnsupportedAlgorithm(
            f"hash algorithm {algorithm['algorithm'].dotted} is not accepted",
            failure_info=BAD_ALG,
        )
    digest = imprint["hashed_message"].native
    check_imprint(name, digest)
    if len(req["extensions"]):
        raise BadRequest("no request extension is supported", failure_info=UNACCEPTED_EXTENSION)
    policy = req["req_policy"]
    return TimestampRequest(
        hash_algorithm=name,
        digest=digest,
        policy=None if isinstance(policy, core.Void) else policy.dotted,
        nonce=req["nonce"].native,
        cert_req=bool(req["cert_req"].native),
        message_imprint=imprint.dump(),
    )


def _accuracy(accuracy: timedelta) -> tsp.Accuracy:
    micros_total = accuracy // timedelta(microseconds=1)
    seconds, rest = divmod(micros_total, 1_000_000)
    millis, micros = divmod(rest, 1000)
    # Zero fields are left out; RFC 3161 allows each to be absent.
    fields = {"seconds": seconds, "millis": millis, "micros": micros}
    return tsp.Accuracy({k: v for k, v in fields.items() if v})


class TstInfoEncoder:
    """DER TSTInfo from parts: the unit's fixed fields (TSA name, accuracy) are encoded
    once, since asn1crypto would re-encode the whole name for every token. The bytes are
    what ``tsp.TSTInfo(...).dump()`` gives (a test holds them equal)."""

    def __init__(self, tsa: x509.Name, accuracy: timedelta) -> None:
        self._accuracy = _accuracy(accuracy).dump()
        name = x509.GeneralName(name="directory_name", value=tsa)
        self._tsa = parser.emit(2, 1, 0, name.dump())  # tsa [0] EXPLICIT GeneralName
        self._policies: dict[str, bytes] = {}  # the unit's few policies, encoded once

    def encode(
        self, request: TimestampRequest, *, policy: str, serial_number: int, gen_time: datetime
    ) -> bytes:
        """genTime keeps the clock's microseconds (trailing zeros dropped); ordering is
        left at its DEFAULT false."""
        policy_der = self._policies.get(policy)
        if policy_der is None:
            policy_der = self._policies[policy] = core.ObjectIdentifier(policy).dump()
        body = (
            _VERSION_1
            + policy_der
            + request.message_imprint
            + der.integer(serial_number)
            + der.generalized_time(gen_time)
            + self._accuracy
        )
        if request.nonce is not None:
            body += der.integer(request.nonce)
        return der.tlv(der.SEQUENCE, body + self._tsa)


_GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status granted }


def granted(token: bytes) -> bytes:
    """DER TimeStampResp: granted, with ``token`` (DER ContentInfo) as it is."""
    return der.tlv(der.SEQUENCE, _GRANTED + token)


def rejection(failure_info: str, text: str) -> bytes:
    return TimeStampResp(
        {
            "status": {
                "status": "rejection",
                "status_string": [text],
                "fail_info": tsp.PKIFailureInfo({failure_info}),
            }
        }
    ).dump()
