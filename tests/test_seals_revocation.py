"""Revocation in the seal service: the maker certificate's status at making, and signer
certificates from a CA other than the service's at stamping and at verification, from
the CRLs a caller supplies and its revocation mode (good, revoked, unknown)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from asn1crypto import pem

from ca.signers import CreateSignerRequest
from keystore.model import Actor, Algorithm, GenerateRequest, Purpose
from seals.service import RevocationInput, RevocationState, StampRequest
from seals.verify import CheckName, CheckStatus, Indication
from seals.wiring import SealVerifier
from tests.seals_helpers import ADMIN, SealEnv, StampingSigner, seal_env
from tests.validation_support import SM2Node, sm2_cert, sm2_crl
from trust.errors import SealMakerCertificateRevoked, SignerCertificateRevoked, TrustError
from trust.errors import SignerRevocationUnknown as Unknown
from trust.keys import PrivateKey
from trust.validation import RevocationMode
from trust.validation import SubIndication as PathSubIndication

USER = Actor("user-1")
DATA = b"<Signature/>"


@dataclass(frozen=True)
class _Spki:
    """What ``sm2_cert`` reads of a subject key: a key-store key's public key."""

    spki: bytes

    def public_bytes_spki(self) -> bytes:
        return self.spki


@dataclass(frozen=True)
class Foreign:
    root: SM2Node
    signer: StampingSigner
    node: SM2Node


@pytest.fixture
def root() -> SM2Node:
    return sm2_cert("Other CA Root", ca=True)


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path, root: SM2Node) -> Iterator[SealEnv]:
    # The other CA's root is an extra anchor, as an operator would configure it.
    anchor = tmp_path / "other-root.pem"
    anchor.write_bytes(pem.armor("CERTIFICATE", root.cert.dump()))
    built = seal_env(sqlite_url, trust_anchor_files=[anchor])
    yield built
    built.close()


@pytest.fixture
def foreign(env: SealEnv, root: SM2Node) -> Foreign:
    """A signer over a key-store key whose certificate the other CA issued (imported)."""
    key = env.keystore.generate(
        GenerateRequest(label="foreign", algorithm=Algorithm.SM2, purpose=Purpose.SEAL), ADMIN
    )
    spki = env.keystore.public_key(key.id).spki_der
    node = sm2_cert("Foreign Signer", root, key=cast(PrivateKey, _Spki(spki)))
    info = env.signers.create(
        CreateSignerRequest("foreign", key.id, certificate=node.cert.dump()), ADMIN
    )
    return Foreign(root, StampingSigner(info.id, info.certificate_der, "-"), node)


def crl(env: SealEnv, foreign: Foreign, revoked_at: datetime | None = None) -> bytes:
    entries = [] if revoked_at is None else [(foreign.node, revoked_at)]
    return sm2_crl(foreign.root, entries, env.clock.now() - timedelta(hours=1))


def stamp(env: SealEnv, esid: str, signer: StampingSigner, **revocation: object) -> object:
    request = StampRequest(
        esid,
        signer.signer_id,
        "/doc",
        data=DATA,
        revocation=RevocationInput(**revocation),  # type: ignore[arg-type]
    )
    return env.service.stamp(request, USER)


def test_making_refused_while_the_maker_certificate_is_revoked_or_on_hold(env: SealEnv) -> None:
    signer = env.add_signer("signer-1")
    first = env.active_seal(signer)  # makes the maker
    maker_serial = env.service.get(first).maker_serial
    assert maker_serial is not None
    second, third = env.apply(signer), env.apply(signer)
    for esid in (second, third):
        env.service.approve(esid, actor="officer-b")
    env.ca.revoke(maker_serial, "certificateHold")
    with pytest.raises(SealMakerCertificateRevoked):
        env.service.make(second, actor="officer-b")
    assert env.service.get(second).eseal is None
    env.ca.release_hold(maker_serial)
    assert env.service.make(second, actor="officer-b").eseal is not None
    env.ca.revoke(maker_serial, "keyCompromise")
    with pytest.raises(SealMakerCertificateRevoked) as refused:
        env.service.make(third, actor="officer-b")
    assert refused.value.code == "seal_maker_certificate_revoked"
    outcomes = [
        r.outcome for r in env.audit.tail(100) if r.action == "seal.make" and r.target == third
    ]
    assert outcomes == ["failure"]


def test_stamping_with_a_signer_from_another_ca(env: SealEnv, foreign: Foreign) -> None:
    esid = env.active_seal(foreign.signer)
    # soft-fail without data: stamped, and the result says revocation was not checked.
    result = stamp(env, esid, foreign.signer)
    status = result.signer_revocation  # type: ignore[attr-defined]
    assert status.state is RevocationState.UNKNOWN and "no CRL or OCSP" in status.source
    good = stamp(env, esid, foreign.signer, crls=(crl(env, foreign),))
    assert good.signer_revocation.state is RevocationState.GOOD  # type: ignore[attr-defined]
    assert good.signer_revocation.source == "CRL"  # type: ignore[attr-defined]
    with pytest.raises(Unknown):
        stamp(env, esid, foreign.signer, mode=RevocationMode.REQUIRE)
    # hard-fail requires data only where the certificate names a CRL or OCSP location.
    lax = stamp(env, esid, foreign.signer, mode=RevocationMode.HARD_FAIL)
    assert lax.signer_revocation.state is RevocationState.UNKNOWN  # type: ignore[attr-defined]
    revoked = crl(env, foreign, env.clock.now() - timedelta(days=1))
    for mode in (RevocationMode.SOFT_FAIL, RevocationMode.REQUIRE):
        with pytest.raises(SignerCertificateRevoked):
            stamp(env, esid, foreign.signer, crls=(revoked,), mode=mode)
    # A CRL from an issuer that is not the signer's says nothing about it.
    stranger = sm2_crl(sm2_cert("Stranger CA", ca=True), [], env.clock.now())
    with pytest.raises(Unknown):
        stamp(env, esid, foreign.signer, crls=(stranger,), mode=RevocationMode.REQUIRE)
    with pytest.raises(TrustError) as bad:
        stamp(env, esid, foreign.signer, crls=(b"not a CRL",))
    assert bad.value.status == 400
    none = stamp(env, esid, foreign.signer, crls=(revoked,), mode=RevocationMode.NONE)
    assert "not requested" in none.signer_revocation.source  # type: ignore[attr-defined]


def test_verifying_a_stamp_by_a_signer_from_another_ca(env: SealEnv, foreign: Foreign) -> None:
    verifier = SealVerifier(env.settings, env.ca, env.clock, env.service)
    esid = env.active_seal(foreign.signer)
    made = stamp(env, esid, foreign.signer, crls=(crl(env, foreign),))
    signature: bytes = made.signature  # type: ignore[attr-defined]
    signed_at: datetime = made.signing_time  # type: ignore[attr-defined]

    def check(**revocation: object) -> tuple[CheckStatus, object, str, Indication]:
        result = verifier.verify_signature(
            signature,
            original=DATA,
            revocation=RevocationInput(**revocation),  # type: ignore[arg-type]
        )
        found = result.check(CheckName.SIGNER_REVOCATION)
        assert result.check(CheckName.SIGNER_CERTIFICATE).status is CheckStatus.PASSED
        return found.status, found.sub_indication, found.message, result.indication

    status, sub, message, indication = check()
    assert (status, sub, indication) == (CheckStatus.NOT_CHECKED, None, Indication.INDETERMINATE)
    assert "no CRL or OCSP response was given" in message
    status, sub, message, indication = check(crls=(crl(env, foreign),))
    assert (status, sub, indication) == (CheckStatus.PASSED, None, Indication.PASSED)
    assert "(CRL)" in message
    before = crl(env, foreign, signed_at - timedelta(days=1))
    status, sub, message, indication = check(crls=(before,))
    assert (status, sub, indication) == (
        CheckStatus.FAILED,
        PathSubIndication.REVOKED,
        Indication.FAILED,
    )
    after = crl(env, foreign, signed_at + timedelta(minutes=1))
    env.clock.advance(timedelta(minutes=5))
    status, sub, message, _ = check(crls=(after,))
    assert status is CheckStatus.PASSED and "after" in message
    status, sub, message, indication = check(mode=RevocationMode.REQUIRE)
    assert (status, sub, indication) == (
        CheckStatus.INDETERMINATE,
        PathSubIndication.TRY_LATER,
        Indication.INDETERMINATE,
    )
    status, _, message, _ = check(crls=(before,), mode=RevocationMode.NONE)
    assert status is CheckStatus.NOT_CHECKED and "not requested" in message
    # The service's own signers keep their answer from the CA's records.
    own = env.add_signer("own")
    own_esid = env.active_seal(own)
    own_stamp = stamp(env, own_esid, own).signature  # type: ignore[attr-defined]
    result = verifier.verify_signature(
        own_stamp, original=DATA, revocation=RevocationInput(mode=RevocationMode.REQUIRE)
    )
    assert result.indication is Indication.PASSED
    assert "CA records" in result.check(CheckName.SIGNER_REVOCATION).message
