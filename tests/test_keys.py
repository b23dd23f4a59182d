"""trust.keys: one interface over SM2, ECDSA and RSA keys; round trips, tampering, bad input."""

from __future__ import annotations

import base64
import contextlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, core, x509
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trust import oids
from trust.errors import (
    BackendUnavailable,
    DecryptionFailed,
    InvalidKey,
    InvalidLength,
    InvalidSignature,
    InvalidSignatureEncoding,
    MalformedASN1,
    MalformedEncoding,
    UnknownOID,
    UnsupportedAlgorithm,
)
from trust.keys import (
    KeyAlgorithm,
    PrivateKey,
    SignatureScheme,
    SM2PrivateKey,
    SM2PublicKey,
    configure_sm2_backend,
    default_sm2_backend,
    generate,
    load_private_key,
    load_public_key,
    public_key_fingerprint,
)
from trust.keys import sm2 as keys_sm2
from trust.sm2.curve import N, compute_e
from trust.sm2.select import available_backends, get_backend
from trust.sm3 import sm3

VECTORS = Path(__file__).parent / "vectors"
INTEROP = Path("/work/shared/interop")
LOAD_ERRORS: tuple[type[Exception], ...] = (
    MalformedASN1,
    MalformedEncoding,
    InvalidKey,
    UnsupportedAlgorithm,
    UnknownOID,
)
VERIFY_ERRORS = (InvalidSignature, InvalidSignatureEncoding)
ALL = list(KeyAlgorithm)
FAST = [KeyAlgorithm.SM2, KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384, KeyAlgorithm.RSA_2048]
SLOW = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@cache
def key(algorithm: KeyAlgorithm) -> PrivateKey:
    """One key per algorithm for the whole run (RSA generation is slow)."""
    return generate(algorithm)


def _schemes(algorithm: KeyAlgorithm) -> list[SignatureScheme | None]:
    if algorithm.value.startswith("rsa"):
        return [None, SignatureScheme.RSA_PKCS1V15, SignatureScheme.RSA_PSS]
    return [None]


positions = st.integers(min_value=0, max_value=1 << 16)


def _flip(data: bytes, index: int, bit: int) -> bytes:
    out = bytearray(data)
    out[index % len(out)] ^= 1 << bit
    return bytes(out)


# --- generation, algorithm, serialisation round trips --------------------------------


@pytest.mark.parametrize("algorithm", ALL)
def test_generate_and_round_trip_encodings(algorithm: KeyAlgorithm) -> None:
    k = key(algorithm)
    assert k.algorithm is algorithm
    pub = k.public_key()
    assert pub.algorithm is algorithm
    for as_pem in (False, True):
        again = load_private_key(k.private_bytes_pkcs8(pem=as_pem))
        assert type(again) is type(k)
        assert again.public_key() == pub
        assert again.private_bytes_pkcs8() == k.private_bytes_pkcs8()
        pub_again = load_public_key(pub.public_bytes_spki(pem=as_pem))
        assert pub_again == pub
        assert hash(pub_again) == hash(pub)
    assert k.private_bytes_pkcs8(pem=True).startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.public_bytes_spki(pem=True).startswith(b"-----BEGIN PUBLIC KEY-----")


def test_generate_accepts_the_enum_value() -> None:
    assert generate(KeyAlgorithm("ecdsa-p256")).algorithm is KeyAlgorithm.ECDSA_P256
    with pytest.raises(ValueError):
        KeyAlgorithm("dsa")


def test_sm2_spki_and_pkcs8_are_gm_t_0009_shaped() -> None:
    k = key(KeyAlgorithm.SM2)
    assert isinstance(k, SM2PrivateKey)
    spki = asn1_keys.PublicKeyInfo.load(k.public_bytes_spki())
    assert spki["algorithm"]["algorithm"].dotted == oids.EC_PUBLIC_KEY
    assert spki["algorithm"]["parameters"].chosen.dotted == oids.SM2_CURVE
    assert spki["public_key"].native == k.public_key().point()
    info = asn1_keys.PrivateKeyInfo.load(k.private_bytes_pkcs8())
    assert info["private_key_algorithm"]["parameters"].chosen.dotted == oids.SM2_CURVE
    ec_key = info["private_key"].parsed
    assert ec_key["private_key"].native == int.from_bytes(k.scalar(), "big")
    assert ec_key["public_key"].native == k.public_key().point()


def test_fingerprint_is_sm3_of_spki_der() -> None:
    for algorithm in FAST:
        pub = key(algorithm).public_key()
        expected = sm3(pub.public_bytes_spki()).hex()
        assert public_key_fingerprint(pub) == expected
        assert public_key_fingerprint(key(algorithm)) == expected
        assert pub.fingerprint() == expected
        assert len(expected) == 64


def test_repr_shows_no_key_material() -> None:
    k = key(KeyAlgorithm.SM2)
    assert isinstance(k, SM2PrivateKey)
    text = repr(k) + repr(k.public_key())
    assert k.scalar().hex() not in text
    assert "sm2" in text


# --- SM2 raw forms and known answers ---------------------------------------------------

scalars = st.integers(min_value=1, max_value=N - 2).map(lambda d: d.to_bytes(32, "big"))


@SLOW
@given(scalars)
def test_sm2_raw_forms_round_trip(scalar: bytes) -> None:
    k = SM2PrivateKey.from_scalar(scalar)
    assert k.scalar() == scalar
    point = k.public_key().point()
    assert len(point) == 65 and point[0] == 4
    assert SM2PublicKey.from_point(point) == k.public_key()
    assert load_private_key(k.private_bytes_pkcs8()).public_key() == k.public_key()


@pytest.mark.parametrize(
    "scalar", [bytes(32), (N - 1).to_bytes(32, "big"), N.to_bytes(32, "big"), bytes(31), bytes(33)]
)
def test_sm2_bad_scalars(scalar: bytes) -> None:
    with pytest.raises(InvalidKey):
        SM2PrivateKey.from_scalar(scalar)


@pytest.mark.parametrize(
    "point",
    [
        b"\x04" + bytes(64),  # not on the curve
        b"\x02" + bytes(32),  # compressed
        b"\x05" + bytes(64),
        bytes(65),
        b"",
    ],
)
def test_sm2_bad_points(point: bytes) -> None:
    with pytest.raises(InvalidKey):
        SM2PublicKey.from_point(point)


def _sm2_vectors() -> list[dict[str, Any]]:
    data = json.loads((VECTORS / "sm2_sign.json").read_text())
    return [v for v in data["vectors"] if v["curve"] == "sm2p256v1"]


@pytest.mark.parametrize("v", _sm2_vectors(), ids=lambda v: v["name"])
def test_sm2_known_answers(v: dict[str, Any]) -> None:
    k = SM2PrivateKey.from_scalar(bytes.fromhex(v["d"]))
    point = bytes.fromhex(v["public"]) if "public" in v else bytes.fromhex("04" + v["px"] + v["py"])
    assert k.public_key().point() == point
    pub = SM2PublicKey.from_point(point)
    if "signature_der" in v:
        signature = bytes.fromhex(v["signature_der"])
    else:
        signature = algos.DSASignature({"r": int(v["r"], 16), "s": int(v["s"], 16)}).dump()
    message, signer_id = v["message"].encode(), v["id"].encode()
    pub.verify(signature, message, signer_id=signer_id)
    pub.verify_digest(signature, compute_e(point, message, signer_id))
    with pytest.raises(InvalidSignature):
        pub.verify(signature, message + b".", signer_id=signer_id)
    with pytest.raises(InvalidSignature):
        pub.verify(signature, message, signer_id=b"another id")


# --- signatures: sign -> verify, any change fails ---------------------------------------


@SLOW
@pytest.mark.parametrize("algorithm", ALL)
@given(message=st.binary(max_size=200), data=st.data())
def test_sign_verify_and_tampering(
    algorithm: KeyAlgorithm, message: bytes, data: st.DataObject
) -> None:
    k = key(algorithm)
    pub = k.public_key()
    scheme = data.draw(st.sampled_from(_schemes(algorithm)))
    signature = k.sign(message, scheme=scheme)
    pub.verify(signature, message, scheme=scheme)

    other = data.draw(st.binary(max_size=200).filter(lambda m: m != message))
    with pytest.raises(InvalidSignature):
        pub.verify(signature, other, scheme=scheme)
    # Signatures are randomised, so draw a position independent of their length.
    index = data.draw(positions) % len(signature)
    bit = data.draw(st.integers(min_value=0, max_value=7))
    with pytest.raises(VERIFY_ERRORS):
        pub.verify(_flip(signature, index, bit), message, scheme=scheme)
    with pytest.raises(VERIFY_ERRORS):
        pub.verify(signature[:index], message, scheme=scheme)


@pytest.mark.parametrize("algorithm", FAST)
def test_sign_digest_matches_sign(algorithm: KeyAlgorithm) -> None:
    k = key(algorithm)
    pub = k.public_key()
    message = b"digest me"
    if isinstance(k, SM2PrivateKey):
        digest = compute_e(k.public_key().point(), message)
    else:
        p384 = algorithm is KeyAlgorithm.ECDSA_P384
        h = hashes.Hash(hashes.SHA384() if p384 else hashes.SHA256())
        h.update(message)
        digest = h.finalize()
    for scheme in _schemes(algorithm):
        pub.verify(k.sign_digest(digest, scheme=scheme), message, scheme=scheme)
        pub.verify_digest(k.sign(message, scheme=scheme), digest, scheme=scheme)
        with pytest.raises(InvalidLength):
            k.sign_digest(digest[:-1], scheme=scheme)
        with pytest.raises(InvalidLength):
            pub.verify_digest(b"\x30\x00", digest + b"\0", scheme=scheme)


def test_sm2_signer_id() -> None:
    k = key(KeyAlgorithm.SM2)
    signature = k.sign(b"m", signer_id=b"alice@example.org")
    k.public_key().verify(signature, b"m", signer_id=b"alice@example.org")
    with pytest.raises(InvalidSignature):
        k.public_key().verify(signature, b"m")


def test_rsa_schemes_are_distinct() -> None:
    k = key(KeyAlgorithm.RSA_2048)
    pss = k.sign(b"m", scheme=SignatureScheme.RSA_PSS)
    with pytest.raises(InvalidSignature):
        k.public_key().verify(pss, b"m")
    k.public_key().verify(k.sign(b"m"), b"m", scheme=SignatureScheme.RSA_PKCS1V15)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.SM2, KeyAlgorithm.ECDSA_P256])
def test_scheme_and_signer_id_misuse(algorithm: KeyAlgorithm) -> None:
    k = key(algorithm)
    with pytest.raises(UnsupportedAlgorithm):
        k.sign(b"m", scheme=SignatureScheme.RSA_PSS)
    with pytest.raises(UnsupportedAlgorithm):
        k.public_key().verify(b"", b"m", scheme=SignatureScheme.RSA_PSS)
    with pytest.raises(UnsupportedAlgorithm):
        key(KeyAlgorithm.RSA_2048).sign(b"m", signer_id=b"x")
    with pytest.raises(UnsupportedAlgorithm):
        key(KeyAlgorithm.ECDSA_P256).public_key().verify(b"", b"m", signer_id=b"x")


# --- encryption ---------------------------------------------------------------------------


@SLOW
@pytest.mark.parametrize("algorithm", [KeyAlgorithm.SM2, KeyAlgorithm.RSA_2048])
@given(plaintext=st.binary(min_size=1, max_size=150), data=st.data())
def test_encrypt_decrypt_and_tampering(
    algorithm: KeyAlgorithm, plaintext: bytes, data: st.DataObject
) -> None:
    k = key(algorithm)
    ciphertext = k.public_key().encrypt(plaintext)
    assert k.decrypt(ciphertext) == plaintext
    index = data.draw(positions) % len(ciphertext)
    bit = data.draw(st.integers(min_value=0, max_value=7))
    with pytest.raises((DecryptionFailed, MalformedASN1)):
        k.decrypt(_flip(ciphertext, index, bit))


def test_encryption_errors() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        key(KeyAlgorithm.ECDSA_P256).public_key().encrypt(b"x")
    with pytest.raises(UnsupportedAlgorithm):
        key(KeyAlgorithm.ECDSA_P384).decrypt(b"x")
    with pytest.raises(InvalidLength):
        key(KeyAlgorithm.SM2).public_key().encrypt(b"")
    with pytest.raises(InvalidLength):
        key(KeyAlgorithm.RSA_2048).public_key().encrypt(bytes(300))


# --- backends -------------------------------------------------------------------------


@pytest.mark.parametrize("name", available_backends())
def test_sm2_keys_work_across_backends(name: str) -> None:
    other = get_backend(name)
    k = key(KeyAlgorithm.SM2)
    assert isinstance(k, SM2PrivateKey)
    moved = SM2PrivateKey.from_scalar(k.scalar(), backend=other)
    assert moved.backend is other
    k.public_key().verify(moved.sign(b"m"), b"m")
    moved.public_key().verify(k.sign(b"m"), b"m")
    assert moved.decrypt(k.public_key().encrypt(b"secret")) == b"secret"
    loaded = load_private_key(k.private_bytes_pkcs8(), sm2_backend=other)
    assert isinstance(loaded, SM2PrivateKey) and loaded.backend is other
    pub = load_public_key(k.public_bytes_spki(), sm2_backend=other)
    assert isinstance(pub, SM2PublicKey) and pub.backend is other
    assert generate(KeyAlgorithm.SM2, sm2_backend=other).backend is other  # type: ignore[attr-defined]


def test_configure_sm2_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    # Restore the process-wide choice after the test, whatever happens.
    monkeypatch.setattr(keys_sm2, "_default", keys_sm2._default)
    name = available_backends()[-1]
    chosen = configure_sm2_backend(name)
    assert default_sm2_backend() is chosen
    assert chosen is get_backend(name)
    k = generate(KeyAlgorithm.SM2)
    assert isinstance(k, SM2PrivateKey) and k.backend is chosen
    with pytest.raises(BackendUnavailable):
        configure_sm2_backend("no-such-engine")
    assert default_sm2_backend() is chosen  # a failed choice changes nothing


# --- third-party SM2 keys ----------------------------------------------------------------


def _tongsuo_keys() -> list[dict[str, Any]]:
    return list(json.loads((VECTORS / "tongsuo_sm2_keys.json").read_text())["keys"])


@pytest.mark.parametrize("v", _tongsuo_keys(), ids=lambda v: v["name"])
def test_tongsuo_sm2_keys(v: dict[str, Any]) -> None:
    k = load_private_key(v["pem"].encode())
    assert isinstance(k, SM2PrivateKey)
    k.public_key().verify(k.sign(b"interop"), b"interop")
    if v["matches_certificate"]:
        path = INTEROP / v["matches_certificate"]
        if not path.exists():
            pytest.skip("interop corpus not present")
        cert = x509.Certificate.load(asn1_pem.unarmor(path.read_bytes())[2])
        # This certificate writes the SM2 OID as the key algorithm (not id-ecPublicKey).
        assert cert.public_key.algorithm == "sm2"
        assert load_public_key(cert.public_key.dump()) == k.public_key()


def test_gmcert_key_matches_its_certificate() -> None:
    directory = INTEROP / "gmsm" / "pkcs7"
    if not directory.exists():
        pytest.skip("interop corpus not present")
    k = load_private_key((directory / "gmcert_sign_key.pem").read_bytes())
    cert = x509.Certificate.load(
        asn1_pem.unarmor((directory / "gmcert_sign_cert.pem").read_bytes())[2]
    )
    assert load_public_key(cert.public_key.dump()) == k.public_key()


# --- malformed input: only the documented trust errors --------------------------------


@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    for loader in (load_private_key, load_public_key):
        with contextlib.suppress(*LOAD_ERRORS):
            loader(data)


@given(st.sampled_from(["PRIVATE KEY", "PUBLIC KEY", "EC PRIVATE KEY", "X"]), st.binary())
def test_random_pem_never_escapes(kind: str, body: bytes) -> None:
    text = f"-----BEGIN {kind}-----\n{base64.b64encode(body).decode()}\n-----END {kind}-----\n"
    for loader in (load_private_key, load_public_key):
        with pytest.raises(LOAD_ERRORS):
            loader(text.encode())


@SLOW
@pytest.mark.parametrize("algorithm", FAST)
@given(data=st.data())
def test_mutated_der_loads_or_raises_documented_errors(
    algorithm: KeyAlgorithm, data: st.DataObject
) -> None:
    k = key(algorithm)
    for der, loader in (
        (k.private_bytes_pkcs8(), load_private_key),
        (k.public_bytes_spki(), load_public_key),
    ):
        index = data.draw(st.integers(min_value=0, max_value=len(der) - 1))
        mutated = data.draw(
            st.sampled_from(
                [
                    _flip(der, index, data.draw(st.integers(0, 7))),
                    der[:index],
                    der + b"\0",
                    der[:index] + der[index + 1 :],
                ]
            )
        )
        with contextlib.suppress(*LOAD_ERRORS):
            loader(mutated)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedASN1),
        (b"\x30\x00", MalformedASN1),
        (b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n", MalformedEncoding),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n", MalformedEncoding),
        (b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", MalformedEncoding),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
            UnsupportedAlgorithm,
        ),
    ],
)
def test_specific_private_key_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_private_key(data)


def _spki_with(algorithm: str, parameters: Any, point: bytes) -> bytes:
    algorithm_id = asn1_keys.PublicKeyAlgorithm({"algorithm": algorithm, "parameters": parameters})
    # Built from parts: asn1crypto's PublicKeyInfo cannot hold an unknown algorithm.
    return core.Sequence(
        contents=algorithm_id.dump() + core.BitString(tuple(_bits(point))).dump()
    ).dump()


def _bits(data: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def test_unknown_and_unsupported_algorithms() -> None:
    point = key(KeyAlgorithm.SM2).public_key().point()  # type: ignore[attr-defined]
    named = asn1_keys.ECDomainParameters
    with pytest.raises(UnknownOID):
        load_public_key(_spki_with("ec", named(name="named", value="1.2.3.4"), point))
    with pytest.raises(UnsupportedAlgorithm):
        load_public_key(_spki_with("ec", named(name="named", value="secp521r1"), point))
    with pytest.raises(UnknownOID):
        load_public_key(_spki_with("1.2.3.4.5", None, point))
    with pytest.raises(UnsupportedAlgorithm):
        load_public_key(_spki_with("ed25519", None, point))
    with pytest.raises(InvalidKey):
        load_public_key(_spki_with("ec", None, point))


def test_pkcs8_with_a_foreign_public_key_is_refused() -> None:
    k, other = key(KeyAlgorithm.SM2), SM2PrivateKey.generate()
    assert isinstance(k, SM2PrivateKey)
    info = asn1_keys.PrivateKeyInfo.load(k.private_bytes_pkcs8())
    ec_key = info["private_key"].parsed
    ec_key["public_key"] = asn1_keys.ECPointBitString(other.public_key().point())
    info["private_key"] = ec_key
    with pytest.raises(InvalidKey) as caught:
        load_private_key(info.dump(force=True))
    assert k.scalar().hex() not in str(caught.value)


def test_sm2_public_key_in_tongsuo_form_has_our_fingerprint() -> None:
    pub = key(KeyAlgorithm.SM2).public_key()
    assert isinstance(pub, SM2PublicKey)
    sm2_param = asn1_keys.ECDomainParameters(name="named", value=oids.SM2_CURVE_NAME)
    tongsuo_form = load_public_key(_spki_with("sm2", sm2_param, pub.point()))
    assert tongsuo_form.fingerprint() == pub.fingerprint()
