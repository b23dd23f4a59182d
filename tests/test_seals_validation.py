"""Verification with the service's trust: chains of the maker and signer certificates to
the service's CAs, revocation from the CA's records, the signature timestamp from a TSA,
and the registry status at the signing time and at the proven time. Each sub-indication
comes from a stamp made (or forged with the builder) to fail that way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import pem

from keystore.model import Actor
from seals.build import build_signature, build_tbs_sign
from seals.service import StampRequest
from seals.verify import (
    CheckName,
    CheckStatus,
    Indication,
    SubIndication,
    VerificationResult,
)
from seals.wiring import SealVerifier
from tests.seals_helpers import SealEnv, StampingSigner, identity, seal_env, vector
from tests.tsa_support import authority, tsa_chain
from trust.keys import KeyAlgorithm
from trust.sm3 import sm3
from trust.validation import SubIndication as PathSubIndication

USER = Actor("user-1")
DATA = b"<Signature/>"


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path) -> Iterator[SealEnv]:
    # The test TSA's root is an extra anchor, as an operator would configure it.
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(pem.armor("CERTIFICATE", tsa_chain(KeyAlgorithm.SM2)[0].dump()))
    holder: list[SealEnv] = []

    class Timestamper:
        def check(self) -> None:
            authority(holder[0].db, holder[0].clock).unit("sm2")

        def __call__(self, algorithm: str, digest: bytes) -> bytes:
            tsa = authority(holder[0].db, holder[0].clock)
            return tsa.issue(algorithm, digest, unit="sm2").token

    built = seal_env(sqlite_url, timestamper=Timestamper(), trust_anchor_files=[root])
    holder.append(built)
    yield built
    built.close()


@pytest.fixture
def signer(env: SealEnv) -> StampingSigner:
    return env.add_signer("signer-1")


@pytest.fixture
def verifier(env: SealEnv) -> SealVerifier:
    return SealVerifier(env.settings, env.ca, env.clock, env.service)


def stamp(env: SealEnv, esid: str, signer: StampingSigner, timestamp: bool = False) -> bytes:
    request = StampRequest(esid, signer.signer_id, "/doc", data=DATA, timestamp=timestamp)
    return env.service.stamp(request, USER).signature


def forged(
    env: SealEnv, esid: str, signer: StampingSigner, when: datetime, timestamp: bool = False
) -> bytes:
    """A stamp made outside the service's rules (another stamping system, a backdated
    clock) with the registered seal and the signer's real key, signed at ``when``."""
    eseal = env.service.get(esid).eseal
    assert eseal is not None
    tbs = build_tbs_sign(seal=eseal, time_info=when, data_hash=sm3(DATA), property_info="/doc")
    handle = env.signers.cms_signer(signer.signer_id, USER)
    stamper = None
    if timestamp:
        issue = authority(env.db, env.clock).issue

        def stamper(value: bytes) -> bytes:
            return issue("sm3", sm3(value), unit="sm2").token

    return build_signature(tbs, signer.certificate, handle.sign, stamper)


def outcome(result: VerificationResult, name: CheckName) -> tuple[CheckStatus, object]:
    check = result.check(name)
    return check.status, check.sub_indication


def test_a_service_stamp_passes_every_check(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    esid = env.active_seal(signer)
    result = verifier.verify_signature(stamp(env, esid, signer), original=DATA)
    assert result.indication is Indication.PASSED, result.checks
    assert result.sub_indication is None
    performed = [c.name for c in result.checks if c.status is CheckStatus.PASSED]
    assert performed == [
        CheckName.FORMAT,
        CheckName.SIGNER_SIGNATURE,
        CheckName.SIGNER_IN_SEAL,
        CheckName.SEAL_MAKER_SIGNATURE,
        CheckName.SEAL_MAKER_CERTIFICATE,
        CheckName.SEAL_MAKER_REVOCATION,
        CheckName.SEAL_VALIDITY,
        CheckName.SIGNER_CERTIFICATE,
        CheckName.SIGNER_REVOCATION,
        CheckName.DATA_HASH,
        CheckName.SEAL_STATUS,
    ]
    assert "active at the signing time" in result.check(CheckName.SEAL_STATUS).message
    # The seal by itself, now.
    eseal = env.service.get(esid).eseal
    assert eseal is not None
    assert verifier.verify_seal(eseal).indication is Indication.PASSED
    # Without the data the hash is listed as not checked, and the verdict says so.
    result = verifier.verify_signature(stamp(env, esid, signer))
    assert outcome(result, CheckName.DATA_HASH) == (CheckStatus.NOT_CHECKED, None)
    assert result.indication is Indication.INDETERMINATE


def test_a_stamp_in_the_second_the_seal_became_active_verifies(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    # timeInfo has whole seconds: a seal made at x.5 s and stamped at x.7 s must not
    # verify as stamped before it was active (rounding timeInfo down would say so).
    env.clock.advance(timedelta(microseconds=500_000))
    esid = env.active_seal(signer)
    env.clock.advance(timedelta(microseconds=200_000))
    result = verifier.verify_signature(stamp(env, esid, signer), original=DATA)
    assert result.indication is Indication.PASSED, result.checks
    assert result.signing_time is not None and result.signing_time.microsecond == 0


def test_timestamped_stamp_gives_a_proven_time(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    esid = env.active_seal(signer)
    signature = stamp(env, esid, signer, timestamp=True)
    result = verifier.verify_signature(signature, original_sm3=sm3(DATA))
    assert outcome(result, CheckName.SIGNATURE_TIMESTAMP) == (CheckStatus.PASSED, None)
    assert result.proven_time is not None and result.indication is Indication.PASSED
    assert "proven time" in result.check(CheckName.SEAL_STATUS).message


def test_suspended_and_revoked_at_signing_time(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    esid = env.active_seal(signer)
    before = stamp(env, esid, signer)
    env.clock.advance(timedelta(hours=1))
    env.service.suspend(esid, actor="officer-b")
    env.clock.advance(timedelta(hours=1))
    during = forged(env, esid, signer, env.clock.now())
    result = verifier.verify_signature(during, original=DATA)
    assert outcome(result, CheckName.SEAL_STATUS) == (
        CheckStatus.FAILED,
        SubIndication.SEAL_SUSPENDED_AT_SIGNING_TIME,
    )
    assert result.indication is Indication.FAILED
    assert result.sub_indication is SubIndication.SEAL_SUSPENDED_AT_SIGNING_TIME
    # A stamp made before the suspension stays good.
    assert verifier.verify_signature(before, original=DATA).indication is Indication.PASSED
    env.clock.advance(timedelta(hours=1))
    env.service.revoke(esid, actor="officer-b")
    env.clock.advance(timedelta(hours=1))
    after = forged(env, esid, signer, env.clock.now())
    result = verifier.verify_signature(after, original=DATA)
    assert outcome(result, CheckName.SEAL_STATUS) == (
        CheckStatus.FAILED,
        SubIndication.SEAL_REVOKED,
    )
    assert verifier.verify_signature(before, original=DATA).indication is Indication.PASSED
    eseal = env.service.get(esid).eseal
    assert eseal is not None
    assert verifier.verify_seal(eseal).sub_indication is SubIndication.SEAL_REVOKED


def test_status_at_the_proven_time_counts_too(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    esid = env.active_seal(signer)
    claimed = env.clock.now()
    env.clock.advance(timedelta(hours=1))
    env.service.suspend(esid, actor="officer-b")
    env.clock.advance(timedelta(hours=1))
    # timeInfo claims a time the seal was active; the TSA proves it existed only later.
    signature = forged(env, esid, signer, claimed, timestamp=True)
    result = verifier.verify_signature(signature, original=DATA)
    status = result.check(CheckName.SEAL_STATUS)
    assert (status.status, status.sub_indication) == (
        CheckStatus.FAILED,
        SubIndication.SEAL_SUSPENDED_AT_SIGNING_TIME,
    )
    assert "proven time" in status.message


def test_expired_seal_and_not_active_yet(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    end = env.clock.now() + timedelta(days=1)
    esid = env.active_seal(signer, valid_end=end)
    late = forged(env, esid, signer, end + timedelta(hours=1))
    result = verifier.verify_signature(late, original=DATA)
    assert outcome(result, CheckName.SEAL_VALIDITY) == (
        CheckStatus.FAILED,
        SubIndication.SEAL_EXPIRED,
    )
    assert outcome(result, CheckName.SEAL_STATUS) == (
        CheckStatus.FAILED,
        SubIndication.SEAL_EXPIRED,
    )
    start = env.clock.now() + timedelta(days=2)
    waiting = env.active_seal(signer, valid_start=start)
    early = forged(env, waiting, signer, env.clock.now())
    assert outcome(verifier.verify_signature(early), CheckName.SEAL_STATUS) == (
        CheckStatus.FAILED,
        SubIndication.SEAL_NOT_ACTIVE_AT_SIGNING_TIME,
    )


def test_signer_not_in_seal_and_data_hash_mismatch(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    other = env.add_signer("signer-2")
    esid = env.active_seal(signer)
    stranger = forged(env, esid, other, env.clock.now())
    result = verifier.verify_signature(stranger, original=DATA)
    assert outcome(result, CheckName.SIGNER_IN_SEAL) == (
        CheckStatus.FAILED,
        SubIndication.SIGNER_NOT_IN_SEAL,
    )
    assert outcome(result, CheckName.SIGNER_CERTIFICATE) == (CheckStatus.PASSED, None)
    good = stamp(env, esid, signer)
    result = verifier.verify_signature(good, original=b"another document")
    assert outcome(result, CheckName.DATA_HASH) == (
        CheckStatus.FAILED,
        SubIndication.DATA_HASH_MISMATCH,
    )
    assert result.sub_indication is SubIndication.DATA_HASH_MISMATCH


def test_signer_certificate_revoked_before_or_after_signing(
    env: SealEnv, signer: StampingSigner, verifier: SealVerifier
) -> None:
    esid = env.active_seal(signer)
    before = stamp(env, esid, signer)
    env.clock.advance(timedelta(minutes=5))
    env.ca.revoke(signer.serial_hex, "keyCompromise")
    env.clock.advance(timedelta(minutes=5))
    result = verifier.verify_signature(before, original=DATA)
    assert outcome(result, CheckName.SIGNER_REVOCATION) == (CheckStatus.PASSED, None)
    assert "after" in result.check(CheckName.SIGNER_REVOCATION).message
    after = forged(env, esid, signer, env.clock.now())
    result = verifier.verify_signature(after, original=DATA)
    assert outcome(result, CheckName.SIGNER_REVOCATION) == (
        CheckStatus.FAILED,
        PathSubIndication.REVOKED,
    )


def test_unknown_trust_and_unregistered_seals(verifier: SealVerifier) -> None:
    from tests.seals_helpers import make_signature

    maker, stranger = identity("Other Maker"), identity("Other Signer")
    result = verifier.verify_signature(make_signature(maker, stranger))
    assert outcome(result, CheckName.SEAL_MAKER_CERTIFICATE) == (
        CheckStatus.INDETERMINATE,
        PathSubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )
    assert result.check(CheckName.SEAL_MAKER_REVOCATION).status is CheckStatus.NOT_CHECKED
    status = result.check(CheckName.SEAL_STATUS)
    assert status.status is CheckStatus.NOT_CHECKED and "not in this service" in status.message
    # The sample seals: maker signatures as before, chains unknown here.
    hebei = verifier.verify_seal(vector("SESealData.DER"))  # the HebeiGede seal
    assert outcome(hebei, CheckName.SEAL_MAKER_SIGNATURE) == (
        CheckStatus.FAILED,
        SubIndication.SEAL_MAKER_SIGNATURE_INVALID,
    )
    data = bytearray(vector("UserV4.esl"))
    data[16] = 6  # SES_Header.version (see test_seals_verify)
    assert (
        verifier.verify_seal(bytes(data)).sub_indication is SubIndication.UNSUPPORTED_SEAL_VERSION
    )
    v5 = verifier.verify_seal(vector("UserV5_ts.esl"))
    assert outcome(v5, CheckName.SEAL_TIMESTAMP) == (
        CheckStatus.NOT_CHECKED,
        SubIndication.TIMESTAMP_UNPARSEABLE,
    )
