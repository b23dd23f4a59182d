"""The TSA service on SQLite: tokens, every failInfo, records and serials."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, tsp, x509

from tests.tsa_support import (
    ECDSA_POLICY,
    OTHER_POLICY,
    SM2_POLICY,
    START,
    authority,
    migrated,
    request,
    tsa_chain,
    units,
    verify_with_pure_backend,
)
from timestamp import (
    ManualClockHealth,
    SqlTokenLog,
    TimestampAuthority,
    TokenRecord,
    TsaUnit,
    parse_request,
    parse_response,
    protocol,
    verify_token,
)
from timestamp.protocol import TstInfoEncoder
from trust.clock import FakeClock
from trust.cms import GMT0010, RFC5652, CmsProfile, KeySigner
from trust.cms.algorithms import digest
from trust.db import Database
from trust.errors import (
    BadRequest,
    ConfigurationError,
    InvalidLength,
    NotFound,
    ServiceUnavailable,
    StorageUnavailable,
    TsaPolicyInvalid,
    UnsupportedAlgorithm,
)
from trust.keys import KeyAlgorithm


@pytest.fixture
def db(sqlite_url: str) -> Database:
    return migrated(sqlite_url)


@pytest.fixture
def tsa(db: Database) -> TimestampAuthority:
    return authority(db)


def granted_token(response: bytes) -> bytes:
    parsed = parse_response(response)
    assert parsed.status == "granted", parsed
    assert parsed.token is not None
    return parsed.token


@pytest.mark.parametrize("hash_algorithm", ["sm3", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("unit", ["sm2", "ecdsa"])
def test_granted_token_verifies(tsa: TimestampAuthority, unit: str, hash_algorithm: str) -> None:
    token = granted_token(tsa.respond(request(b"doc", hash_algorithm), unit))
    result = verify_token(token, data=b"doc")
    assert result.ok, result.problems
    assert result.hash_algorithm == hash_algorithm
    assert result.nonce == 0x1234567890ABCDEF
    assert result.gen_time == START  # microseconds kept
    assert result.policy == (SM2_POLICY if unit == "sm2" else ECDSA_POLICY)
    assert result.ordering is False
    assert result.accuracy == (
        timedelta(seconds=1) if unit == "sm2" else timedelta(milliseconds=500)
    )
    leaf = tsa_chain(KeyAlgorithm.SM2 if unit == "sm2" else KeyAlgorithm.ECDSA_P256)[1]
    assert result.tsa_name is not None and result.tsa_name.chosen == leaf.subject
    assert result.signer_certificate is not None
    assert result.signer_certificate.dump() == leaf.dump()
    assert not verify_token(token, data=b"other").ok
    record = tsa.get(result.serial_hex)
    assert record.unit == unit and record.token == token and record.gen_time == START
    assert record.imprint == digest(hash_algorithm, b"doc")


def test_sm2_token_oids_and_pure_backend_signature(tsa: TimestampAuthority) -> None:
    token = granted_token(tsa.respond(request(b"doc", "sm3"), "sm2"))
    info = cms.ContentInfo.load(token)
    assert info["content_type"].dotted == "1.2.840.113549.1.7.2"
    signed = info["content"]
    assert signed["encap_content_info"]["content_type"].dotted == "1.2.840.113549.1.9.16.1.4"
    si = signed["signer_infos"][0]
    assert si["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.301.1"
    kinds = {a["type"].native for a in si["signed_attrs"]}
    assert kinds == {"content_type", "message_digest", "signing_certificate_v2"}
    verify_with_pure_backend(token, tsa_chain(KeyAlgorithm.SM2)[1])
    # The chain goes with the certificate when certReq is set.
    assert len(signed["certificates"]) == 2


def test_cert_req_false_leaves_certificates_out(tsa: TimestampAuthority) -> None:
    token = granted_token(tsa.respond(request(cert_req=False), "ecdsa"))
    assert not cms.ContentInfo.load(token)["content"]["certificates"]
    assert not verify_token(token).ok  # no certificate to check against
    leaf = tsa_chain(KeyAlgorithm.ECDSA_P256)[1]
    assert verify_token(token, extra_certificates=[leaf]).ok


def test_requested_policy_and_no_nonce(tsa: TimestampAuthority) -> None:
    token = granted_token(tsa.respond(request(policy=OTHER_POLICY, nonce=None), "ecdsa"))
    result = verify_token(token)
    assert result.policy == OTHER_POLICY and result.nonce is None


def test_default_unit_is_the_first(tsa: TimestampAuthority) -> None:
    token = granted_token(tsa.respond(request()))
    assert verify_token(token).policy == SM2_POLICY


def rejected(response: bytes) -> frozenset[str]:
    parsed = parse_response(response)
    assert parsed.status == "rejection" and parsed.token is None
    assert parsed.status_text
    return parsed.failure_info


@pytest.mark.parametrize(
    "body",
    [
        request(hash_oid="1.3.14.3.2.26", hashed=bytes(20)),  # SHA-1
        request(hash_oid="1.2.840.113549.2.5", hashed=bytes(16)),  # MD5
        request(hash_oid="1.2.3.4", hashed=bytes(32)),
    ],
    ids=["sha1", "md5", "unknown"],
)
def test_bad_alg(tsa: TimestampAuthority, body: bytes) -> None:
    assert rejected(tsa.respond(body)) == {"bad_alg"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x30\x03\x02\x01",
        b"not DER at all",
        request()[:-3],
        request() + b"\x00",
        request(hashed=bytes(31)),
        request(b"document", "sm3", hashed=bytes(33)),
        request(version=2),
    ],
    ids=["empty", "truncated-int", "text", "truncated", "trailing", "short", "long", "v2"],
)
def test_bad_data_format(tsa: TimestampAuthority, body: bytes) -> None:
    assert rejected(tsa.respond(body)) == {"bad_data_format"}


def test_unaccepted_policy(tsa: TimestampAuthority) -> None:
    # OTHER_POLICY is offered by the ecdsa unit only.
    assert rejected(tsa.respond(request(policy=OTHER_POLICY), "sm2")) == {"unaccepted_policy"}


@pytest.mark.parametrize("oid", ["1.2.156.112233.3.1", "2.999.1.1", "0.39", "2.100.3", "1.0"])
def test_policy_oid_accepted(oid: str) -> None:
    assert protocol.check_policy(oid) == oid


@pytest.mark.parametrize(
    "oid", ["", "1", "3.1", "1.40", "1.02", "1.2.", ".1.2", "1..2", "1.2.x", "1.2 ", "1." * 70]
)
def test_policy_oid_refused(oid: str) -> None:
    with pytest.raises(TsaPolicyInvalid):
        protocol.check_policy(oid)


def test_unaccepted_extension(tsa: TimestampAuthority) -> None:
    ext = [{"extn_id": "1.2.3.4.5", "critical": False, "extn_value": b"\x05\x00"}]
    assert rejected(tsa.respond(request(extensions=ext))) == {"unaccepted_extensions"}


def test_time_not_available(db: Database) -> None:
    health = ManualClockHealth()
    tsa = authority(db, health=health)
    health.set(False)
    assert rejected(tsa.respond(request())) == {"time_not_available"}
    with pytest.raises(ServiceUnavailable) as err:
        tsa.issue("sha256", bytes(32))
    assert err.value.extra["failure_info"] == "time_not_available"
    health.set(True)
    granted_token(tsa.respond(request()))


class _BrokenLog:
    def add(self, record: TokenRecord) -> None:
        raise StorageUnavailable("database down")

    def get(self, serial_hex: str) -> TokenRecord | None:
        return None


def test_system_failure_when_the_record_cannot_be_written() -> None:
    tsa = TimestampAuthority(units(), _BrokenLog(), FakeClock(START))
    # No record, no token: the response carries none.
    assert rejected(tsa.respond(request())) == {"system_failure"}


def test_unknown_unit(tsa: TimestampAuthority) -> None:
    with pytest.raises(NotFound):
        tsa.respond(request(), "nope")


def test_issue_over_a_digest(tsa: TimestampAuthority) -> None:
    d = digest("sm3", b"payload")
    issued = tsa.issue("sm3", d, unit="ecdsa")
    result = verify_token(issued.token, digest=d)
    assert result.ok and result.serial_hex == issued.serial_hex and result.nonce is None
    assert issued.gen_time == START and issued.unit == "ecdsa" and issued.policy == ECDSA_POLICY
    with pytest.raises(UnsupportedAlgorithm) as bad_alg:
        tsa.issue("md5", bytes(16))
    assert bad_alg.value.extra["failure_info"] == "bad_alg"
    with pytest.raises(InvalidLength):
        tsa.issue("sha256", bytes(20))
    with pytest.raises(BadRequest):
        tsa.issue("sha256", bytes(32), policy="1.2.3")


def test_get_normalises_the_serial(tsa: TimestampAuthority) -> None:
    issued = tsa.issue("sha256", bytes(32))
    assert tsa.get("000" + issued.serial_hex.upper()).serial_hex == issued.serial_hex
    with pytest.raises(NotFound):
        tsa.get("ff")
    for bad in ["xyz", "", "1" * 41]:
        with pytest.raises(BadRequest):
            tsa.get(bad)


def test_serial_collision_draws_again(database_url: str) -> None:
    db = migrated(database_url)  # SQLite and PostgreSQL: each driver's integrity error
    draws = iter([7, 7, 8])
    tsa = TimestampAuthority(
        units(), SqlTokenLog(db), FakeClock(START), serials=lambda: next(draws)
    )
    assert tsa.issue("sha256", bytes(32)).serial_hex == "7"
    assert tsa.issue("sha256", bytes(32)).serial_hex == "8"
    assert verify_token(tsa.get("8").token).serial_number == 8
    db.dispose()


def test_serials_unique_across_a_restart(sqlite_url: str) -> None:
    serials = []
    for _ in range(2):
        db = migrated(sqlite_url)
        tsa = authority(db)
        serials += [tsa.issue("sha256", bytes(32), unit="ecdsa").serial_hex for _ in range(50)]
        db.dispose()
    assert len(set(serials)) == 100
    tsa = authority(migrated(sqlite_url))
    assert all(tsa.get(s).serial_hex == s for s in serials)
    assert all(int(s, 16).bit_length() <= 127 for s in serials)


def test_malformed_response_input() -> None:
    from trust.errors import MalformedASN1

    with pytest.raises(MalformedASN1):
        parse_response(b"\x30\x00")


@pytest.mark.parametrize(
    ("profile", "outer", "signature_oid"),
    [
        (GMT0010, "1.2.156.10197.6.1.4.2.2", "1.2.156.10197.1.301.1"),
        (RFC5652, "1.2.840.113549.1.7.2", "1.2.156.10197.1.501"),
    ],
)
def test_sm2_tokens_with_the_other_oid_choices_verify(
    db: Database, profile: CmsProfile, outer: str, signature_oid: str
) -> None:
    """What other GM producers write (GM/T 0010 content type, SM3withSM2) is accepted."""
    _root, leaf, key = tsa_chain(KeyAlgorithm.SM2)
    unit = TsaUnit("gm", KeySigner(key, leaf), SM2_POLICY, profile=profile)
    tsa = TimestampAuthority([unit], SqlTokenLog(db), FakeClock(START))
    token = granted_token(tsa.respond(request(b"doc", "sm3")))
    info = cms.ContentInfo.load(token)
    assert info["content_type"].dotted == outer
    si = info["content"]["signer_infos"][0]
    assert si["signature_algorithm"]["algorithm"].dotted == signature_oid
    assert verify_token(token, data=b"doc").ok


@pytest.mark.parametrize("nonce", [None, 0, 0x1234567890ABCDEF, 1 << 70])
@pytest.mark.parametrize(
    "accuracy",
    [timedelta(seconds=1), timedelta(milliseconds=500), timedelta(seconds=2, microseconds=7)],
)
@pytest.mark.parametrize(
    "gen_time", [START, START.replace(microsecond=0), START.replace(microsecond=120000)]
)
def test_tst_info_parts_encode_as_asn1crypto_would(
    nonce: int | None, accuracy: timedelta, gen_time: datetime
) -> None:
    """The TSTInfo assembled from DER parts is byte for byte asn1crypto's encoding."""
    parsed = parse_request(request(b"doc", "sm3", nonce=nonce))
    subject = tsa_chain(KeyAlgorithm.SM2)[1].subject
    fields: dict[str, object] = {
        "version": "v1",
        "policy": SM2_POLICY,
        "message_imprint": tsp.MessageImprint.load(parsed.message_imprint),
        "serial_number": (1 << 126) + 5,
        "gen_time": gen_time,
        "accuracy": protocol._accuracy(accuracy),
        "tsa": x509.GeneralName(name="directory_name", value=subject),
    }
    if nonce is not None:
        fields["nonce"] = nonce
    ours = TstInfoEncoder(subject, accuracy).encode(
        parsed, policy=SM2_POLICY, serial_number=(1 << 126) + 5, gen_time=gen_time
    )
    assert ours == tsp.TSTInfo(fields).dump(force=True)
    assert tsp.TSTInfo.load(ours)["gen_time"].native == gen_time


def test_token_log_storage_failure_is_storage_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'unmigrated.db'}")  # no tsa_token table
    record = TokenRecord("1", "sm2", START, SM2_POLICY, "sm3", bytes(32), b"\x30\x00")
    with pytest.raises(StorageUnavailable):
        SqlTokenLog(db).add(record)
    db.dispose()


def test_a_unit_needs_a_positive_accuracy() -> None:
    base = units()[0]
    with pytest.raises(ConfigurationError):
        TsaUnit(base.name, base.signer, base.policy, accuracy=timedelta(0))
