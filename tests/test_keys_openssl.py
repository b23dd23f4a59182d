"""trust.keys against the ``openssl`` command line (3.x): keys and signatures both ways."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import need_service
from trust.keys import (
    KeyAlgorithm,
    PrivateKey,
    SignatureScheme,
    SM2PrivateKey,
    generate,
    load_private_key,
    load_public_key,
)

pytestmark = pytest.mark.openssl_cli

DISTID = "1234567812345678"
MESSAGE = b"trust service interop message\n"


def openssl(*args: str | Path, stdin: bytes | None = None) -> bytes:
    if shutil.which("openssl") is None:
        need_service("openssl", "the openssl command line is not on PATH")
    done = subprocess.run(
        ["openssl", *map(str, args)], input=stdin, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


@cache
def ours(algorithm: KeyAlgorithm) -> PrivateKey:
    return generate(algorithm)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- keys we write, read by openssl ---------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expect"),
    [
        (KeyAlgorithm.SM2, "ASN1 OID: SM2"),
        (KeyAlgorithm.ECDSA_P256, "NIST CURVE: P-256"),
        (KeyAlgorithm.ECDSA_P384, "NIST CURVE: P-384"),
        (KeyAlgorithm.RSA_2048, "(2048 bit"),
        (KeyAlgorithm.RSA_3072, "(3072 bit"),
    ],
)
def test_openssl_reads_our_keys(tmp_path: Path, algorithm: KeyAlgorithm, expect: str) -> None:
    k = ours(algorithm)
    for as_pem in (True, False):
        form = "PEM" if as_pem else "DER"
        key_file = _write(tmp_path / "key", k.private_bytes_pkcs8(pem=as_pem))
        text = openssl("pkey", "-inform", form, "-in", key_file, "-noout", "-text")
        assert expect in text.decode()
        pub_file = _write(tmp_path / "pub", k.public_bytes_spki(pem=as_pem))
        text = openssl("pkey", "-pubin", "-inform", form, "-in", pub_file, "-noout", "-text")
        assert expect in text.decode()
    # openssl re-encodes our PKCS#8 and SPKI byte for byte: same structure, same DER.
    reencoded = openssl("pkcs8", "-topk8", "-nocrypt", "-inform", "DER", "-in", key_file)
    assert reencoded == k.private_bytes_pkcs8(pem=True)
    assert openssl("pkey", "-pubin", "-in", pub_file, "-inform", "DER", "-outform", "DER") == (
        k.public_bytes_spki()
    )


# --- keys openssl writes, read by us --------------------------------------------------


def _genpkey_sm2(path: Path) -> None:
    openssl("genpkey", "-algorithm", "SM2", "-out", path)


def _ecparam_sm2(path: Path) -> None:
    openssl("ecparam", "-name", "SM2", "-genkey", "-out", path)


def _sec1_sm2(path: Path) -> None:
    # The traditional "EC PRIVATE KEY" form of an SM2 key.
    _genpkey_sm2(path.with_suffix(".pk8"))
    openssl("ec", "-in", path.with_suffix(".pk8"), "-out", path)


def _genpkey_ec(curve: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        option = f"ec_paramgen_curve:{curve}"
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", option, "-out", path)

    return make


def _ecparam_ec(curve: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        openssl("ecparam", "-name", curve, "-genkey", "-out", path)

    return make


def _genpkey_rsa(bits: int, traditional: bool = False) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out", path)
        if traditional:
            openssl("rsa", "-in", path, "-traditional", "-out", path)

    return make


OPENSSL_KEYS: list[tuple[str, Callable[[Path], None], KeyAlgorithm]] = [
    ("genpkey-sm2", _genpkey_sm2, KeyAlgorithm.SM2),
    ("ecparam-sm2", _ecparam_sm2, KeyAlgorithm.SM2),
    ("sec1-sm2", _sec1_sm2, KeyAlgorithm.SM2),
    ("genpkey-p256", _genpkey_ec("P-256"), KeyAlgorithm.ECDSA_P256),
    ("ecparam-p384", _ecparam_ec("secp384r1"), KeyAlgorithm.ECDSA_P384),
    ("genpkey-rsa2048", _genpkey_rsa(2048), KeyAlgorithm.RSA_2048),
    ("pkcs1-rsa2048", _genpkey_rsa(2048, traditional=True), KeyAlgorithm.RSA_2048),
]


@pytest.mark.parametrize(
    ("make", "algorithm"), [(m, a) for _, m, a in OPENSSL_KEYS], ids=[n for n, _, _ in OPENSSL_KEYS]
)
def test_we_read_openssl_keys_and_signatures_cross(
    tmp_path: Path, make: Callable[[Path], None], algorithm: KeyAlgorithm
) -> None:
    key_file = tmp_path / "key.pem"
    make(key_file)
    k = load_private_key(key_file.read_bytes())
    assert k.algorithm is algorithm
    pub_file = _write(tmp_path / "pub.pem", openssl("pkey", "-in", key_file, "-pubout"))
    pub = load_public_key(pub_file.read_bytes())
    assert pub == k.public_key()
    # Same key, DER PKCS#8 as openssl writes it.
    der = openssl("pkcs8", "-topk8", "-nocrypt", "-in", key_file, "-outform", "DER")
    assert load_private_key(der).public_key() == pub

    msg = _write(tmp_path / "msg", MESSAGE)
    if algorithm is KeyAlgorithm.SM2:
        _sm2_both_ways(tmp_path, k, key_file, pub_file, msg)
    else:
        _dgst_both_ways(tmp_path, k, key_file, pub_file, msg)


def _sm2_both_ways(tmp: Path, k: PrivateKey, key_file: Path, pub_file: Path, msg: Path) -> None:
    for distid in (DISTID, "alice@example.org"):
        signer_id = None if distid == DISTID else distid.encode()
        sig = _write(tmp / "sig", k.sign(MESSAGE, signer_id=signer_id))
        out = openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", pub_file, "-rawin", "-in", msg,
            "-sigfile", sig, "-digest", "sm3", "-pkeyopt", f"distid:{distid}",
        )  # fmt: skip
        assert b"Signature Verified Successfully" in out
        theirs = openssl(
            "pkeyutl", "-sign", "-inkey", key_file, "-rawin", "-in", msg,
            "-digest", "sm3", "-pkeyopt", f"distid:{distid}",
        )  # fmt: skip
        k.public_key().verify(theirs, MESSAGE, signer_id=signer_id)

    ciphertext = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", pub_file, "-in", msg)
    assert k.decrypt(ciphertext) == MESSAGE
    ct = _write(tmp / "ct", k.public_key().encrypt(MESSAGE))
    assert openssl("pkeyutl", "-decrypt", "-inkey", key_file, "-in", ct) == MESSAGE


def _dgst_both_ways(tmp: Path, k: PrivateKey, key_file: Path, pub_file: Path, msg: Path) -> None:
    digest = "-sha384" if k.algorithm is KeyAlgorithm.ECDSA_P384 else "-sha256"
    schemes: list[tuple[SignatureScheme | None, list[str]]] = [(None, [])]
    if k.algorithm.value.startswith("rsa"):
        pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
        schemes.append((SignatureScheme.RSA_PSS, pss))
        # OpenSSL's default PSS salt is the maximum length; ours verifies any salt.
        schemes.append((SignatureScheme.RSA_PSS, ["-sigopt", "rsa_padding_mode:pss"]))
    for scheme, opts in schemes:
        sig = _write(tmp / "sig", k.sign(MESSAGE, scheme=scheme))
        out = openssl("dgst", digest, *opts, "-verify", pub_file, "-signature", sig, msg)
        assert b"Verified OK" in out
        theirs = openssl("dgst", digest, *opts, "-sign", key_file, msg)
        k.public_key().verify(theirs, MESSAGE, scheme=scheme)
    if k.algorithm.value.startswith("rsa"):
        oaep = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256"]
        oaep += ["-pkeyopt", "rsa_mgf1_md:sha256"]
        ct = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", pub_file, "-in", msg, *oaep)
        assert k.decrypt(ct) == MESSAGE
        ours_ct = _write(tmp / "ct", k.public_key().encrypt(MESSAGE))
        assert openssl("pkeyutl", "-decrypt", "-inkey", key_file, "-in", ours_ct, *oaep) == MESSAGE


def test_our_sm2_signature_with_our_key_verifies_in_openssl(tmp_path: Path) -> None:
    k = ours(KeyAlgorithm.SM2)
    assert isinstance(k, SM2PrivateKey)
    pub_file = _write(tmp_path / "pub.der", k.public_bytes_spki())
    msg = _write(tmp_path / "msg", MESSAGE)
    sig = _write(tmp_path / "sig", k.sign(MESSAGE))
    out = openssl(
        "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", pub_file, "-rawin",
        "-in", msg, "-sigfile", sig, "-digest", "sm3", "-pkeyopt", f"distid:{DISTID}",
    )  # fmt: skip
    assert b"Signature Verified Successfully" in out
