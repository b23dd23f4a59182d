"""trust.cms: SignedData built here verifies here, and every tampering is reported."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pytest
from asn1crypto import cms, core, x509

from tests.certs_helper import make_certificate, make_chain
from trust.cms import (
    GMT0010,
    RFC5652,
    KeySigner,
    add_unsigned_attributes,
    build_signed_data,
    load_content_info,
    timestamp_token_attribute,
    verify_signed_data,
)
from trust.errors import BadRequest, InvalidKey, MalformedASN1
from trust.keys import KeyAlgorithm, PrivateKey, generate
from trust.sm2.select import get_backend

CONTENT = b"trust service CMS test content\n"
OTHER_TYPE = "1.2.156.112233.1"  # any eContentType other than data
ALGORITHMS = [
    KeyAlgorithm.SM2,
    KeyAlgorithm.ECDSA_P256,
    KeyAlgorithm.ECDSA_P384,
    KeyAlgorithm.RSA_2048,
]


@cache
def chain(algorithm: KeyAlgorithm) -> tuple[x509.Certificate, x509.Certificate, PrivateKey]:
    return make_chain(algorithm)


def signer(algorithm: KeyAlgorithm) -> KeySigner:
    _root, leaf, key = chain(algorithm)
    return KeySigner(key, leaf)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("detached", [False, True])
def test_round_trip(algorithm: KeyAlgorithm, detached: bool) -> None:
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    der = build_signed_data(CONTENT, signer(algorithm), detached=detached, signing_time=when)
    result = verify_signed_data(der, content=CONTENT if detached else None)
    assert result.ok, result.signers[0].problems
    assert result.detached is detached
    assert result.content == CONTENT
    assert result.content_info_type == "1.2.840.113549.1.7.2"
    assert result.content_type == "1.2.840.113549.1.7.1"
    (one,) = result.signers
    assert one.certificate is not None and one.certificate.dump() == chain(algorithm)[1].dump()
    assert one.signing_time == when
    assert one.ess_certificate_ok is True
    assert one.problems == ()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_other_content_is_a_digest_failure(algorithm: KeyAlgorithm) -> None:
    der = build_signed_data(CONTENT, signer(algorithm), detached=True)
    (one,) = verify_signed_data(der, content=CONTENT + b"x").signers
    assert one.signature_ok and not one.digest_ok and not one.ok
    assert "message digest does not match the content" in one.problems


def test_detached_without_content() -> None:
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.ECDSA_P256), detached=True)
    result = verify_signed_data(der)
    # The signature over the attributes still checks; the digest cannot.
    assert result.signers[0].signature_ok and not result.signers[0].digest_ok
    assert result.content is None and not result.ok


def test_attached_with_different_external_content() -> None:
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.ECDSA_P256))
    result = verify_signed_data(der, content=b"other")
    assert not result.ok
    assert result.signers[0].ok
    assert result.problems == ("the content given differs from the encapsulated content",)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tampered_signature(algorithm: KeyAlgorithm) -> None:
    der = build_signed_data(CONTENT, signer(algorithm))
    info = load_content_info(der)
    si = info["content"]["signer_infos"][0]
    sig = bytearray(si["signature"].native)
    sig[len(sig) // 2] ^= 1
    si["signature"] = bytes(sig)
    (one,) = verify_signed_data(info.dump(force=True)).signers
    assert one.digest_ok and not one.signature_ok and not one.ok


def test_gm_profile_oids_and_sm2_signature_with_the_pure_backend() -> None:
    """GM/T 0010 OIDs, readable by plain asn1crypto; the SM2 signature over the DER
    SET OF attributes checks with the independent gmssl-based engine."""
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.SM2), profile=GMT0010)
    info = cms.ContentInfo.load(der)
    assert info["content_type"].dotted == "1.2.156.10197.6.1.4.2.2"
    signed = info["content"]
    assert signed["version"].native == "v1"
    assert signed["encap_content_info"]["content_type"].dotted == "1.2.156.10197.6.1.4.2.1"
    si = signed["signer_infos"][0]
    assert si["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.301.1"
    signed_attrs = b"\x31" + si["signed_attrs"].dump()[1:]
    point = chain(KeyAlgorithm.SM2)[1].public_key["public_key"].native
    get_backend("pure").load_public(point).verify(signed_attrs, si["signature"].native)
    assert verify_signed_data(der).ok


def test_rfc_profile_names_sm2_as_sm3_with_sm2() -> None:
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.SM2), profile=RFC5652)
    si = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"


def test_ess_cert_id_v2_hash_follows_the_digest() -> None:
    for algorithm, dotted in [
        (KeyAlgorithm.SM2, "1.2.156.10197.1.401"),
        (KeyAlgorithm.ECDSA_P384, "2.16.840.1.101.3.4.2.2"),
    ]:
        der = build_signed_data(CONTENT, signer(algorithm))
        attrs = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["signed_attrs"]
        (ess,) = [a for a in attrs if a["type"].native == "signing_certificate_v2"]
        assert ess["values"][0]["certs"][0]["hash_algorithm"]["algorithm"].dotted == dotted


def test_ess_sha256_is_left_as_default() -> None:
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.ECDSA_P256))
    attrs = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["signed_attrs"]
    (ess,) = [a for a in attrs if a["type"].native == "signing_certificate_v2"]
    # RFC 5035: hashAlgorithm DEFAULT id-sha256 is absent from the DER.
    assert ess["values"][0]["certs"][0].dump()[2] == 0x04


def test_ess_mismatch_is_reported() -> None:
    """A different certificate with the same issuer, serial and key: the signature still
    verifies, only the ESS certificate hash tells them apart."""
    root_key, key = generate(KeyAlgorithm.ECDSA_P256), generate(KeyAlgorithm.ECDSA_P256)
    root = make_certificate("ESS Root", root_key, ca=True)
    first = make_certificate("First", key, issuer=(root, root_key), serial_number=77)
    second = make_certificate("Second", key, issuer=(root, root_key), serial_number=77)
    der = build_signed_data(CONTENT, KeySigner(key, first), include_certificates=False)
    assert verify_signed_data(der, extra_certificates=[first]).ok
    (one,) = verify_signed_data(der, extra_certificates=[second]).signers
    assert one.signature_ok and one.digest_ok and one.ess_certificate_ok is False and not one.ok


def test_signer_certificate_not_found() -> None:
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.ECDSA_P256), include_certificates=False)
    result = verify_signed_data(der)
    assert not result.ok and "signer certificate not found" in result.signers[0].problems
    assert verify_signed_data(der, extra_certificates=[chain(KeyAlgorithm.ECDSA_P256)[1]]).ok


def test_chain_certificates_included() -> None:
    root, leaf, _ = chain(KeyAlgorithm.ECDSA_P256)
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.ECDSA_P256), extra_certificates=[root])
    result = verify_signed_data(der)
    # A SET OF: DER orders it by encoding, not by chain position.
    assert sorted(c.dump() for c in result.certificates) == sorted([leaf.dump(), root.dump()])


def test_other_content_type_and_extra_attribute() -> None:
    extra = cms.CMSAttribute({"type": "1.2.3.4.5", "values": [core.UTF8String("x")]})
    der = build_signed_data(
        CONTENT,
        signer(KeyAlgorithm.SM2),
        content_type=OTHER_TYPE,
        extra_signed_attributes=[extra],
        include_certificates=False,
    )
    info = cms.ContentInfo.load(der)
    assert info["content"]["version"].native == "v3"  # RFC 5652 §5.1: eContentType not data
    result = verify_signed_data(der, extra_certificates=[chain(KeyAlgorithm.SM2)[1]])
    assert result.ok and result.content_type == OTHER_TYPE


def test_duplicate_signed_attribute_refused() -> None:
    dup = cms.CMSAttribute({"type": "content_type", "values": ["data"]})
    with pytest.raises(BadRequest):
        build_signed_data(CONTENT, signer(KeyAlgorithm.SM2), extra_signed_attributes=[dup])


def test_unsigned_timestamp_attribute_keeps_the_signature() -> None:
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.SM2))
    token = build_signed_data(b"token stand-in", signer(KeyAlgorithm.ECDSA_P256))
    stamped = add_unsigned_attributes(der, [timestamp_token_attribute(token)])
    assert verify_signed_data(stamped).ok
    si = cms.ContentInfo.load(stamped)["content"]["signer_infos"][0]
    (attr,) = si["unsigned_attrs"]
    assert attr["type"].dotted == "1.2.840.113549.1.9.16.2.14"
    assert attr["values"][0].dump() == token
    built = build_signed_data(
        CONTENT, signer(KeyAlgorithm.SM2), unsigned_attributes=[timestamp_token_attribute(token)]
    )
    assert verify_signed_data(built).ok


def test_bad_timestamp_token_attribute() -> None:
    with pytest.raises(MalformedASN1):
        timestamp_token_attribute(b"\x30\x03\x02")


def test_key_signer_refuses_a_foreign_certificate() -> None:
    with pytest.raises(InvalidKey):
        KeySigner(generate(KeyAlgorithm.SM2), chain(KeyAlgorithm.SM2)[1])


def test_not_signed_data() -> None:
    data = cms.ContentInfo({"content_type": "data", "content": b"x"}).dump()
    with pytest.raises(MalformedASN1):
        verify_signed_data(data)


def test_second_unsigned_attribute_is_appended() -> None:
    token = build_signed_data(b"token stand-in", signer(KeyAlgorithm.ECDSA_P256))
    der = build_signed_data(CONTENT, signer(KeyAlgorithm.SM2))
    once = add_unsigned_attributes(der, [timestamp_token_attribute(token)])
    twice = add_unsigned_attributes(once, [timestamp_token_attribute(token)])
    assert verify_signed_data(twice).ok
    si = cms.ContentInfo.load(twice)["content"]["signer_infos"][0]
    assert len(si["unsigned_attrs"]) == 2
    with pytest.raises(BadRequest):
        add_unsigned_attributes(der, [], signer_index=1)
