"""RFC 3161 messages: parsing TimeStampReq, building TSTInfo and TimeStampResp.

A refused request is a ``TrustError`` whose ``extra["failure_info"]`` names the
PKIFailureInfo bit (asn1crypto's snake_case names, e.g. ``bad_alg``); the service
turns it into a rejection response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import algos, cms, core, parser, tsp, x509

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
    message_imprint: tsp.MessageImprint  # echoed unchanged into TSTInfo


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


def message_imprint(hash_algorithm: str, digest: bytes) -> tsp.MessageImprint:
    return tsp.MessageImprint(
        {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": DIGEST_OIDS[hash_algorithm]}),
            "hashed_message": digest,
        }
    )


def parse_request(data: bytes) -> TimestampRequest:
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
        message_imprint=imprint,
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

    def encode(
        self, request: TimestampRequest, *, policy: str, serial_number: int, gen_time: datetime
    ) -> bytes:
        """genTime keeps the clock's microseconds (trailing zeros dropped); ordering is
        left at its DEFAULT false."""
        body = (
            _VERSION_1
            + core.ObjectIdentifier(policy).dump()
            + request.message_imprint.dump()
            + core.Integer(serial_number).dump()
            + core.GeneralizedTime(gen_time).dump()
            + self._accuracy
        )
        if request.nonce is not None:
            body += core.Integer(request.nonce).dump()
        return bytes(parser.emit(0, 1, 16, body + self._tsa))


def granted(token: bytes) -> bytes:
    return TimeStampResp(
        {
            "status": {"status": "granted"},
            # Our own token: a lazy load is enough, no need to check every field.
            "time_stamp_token": cms.ContentInfo.load(token),
        }
    ).dump()


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
