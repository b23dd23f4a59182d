"""Cross-implementation checks: OpenSSL engine <-> pure engine <-> the openssl command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import core, pem
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import need_service
from trust.errors import InvalidSignature
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2Backend, SM2PrivateHandle
from trust.sm2.curve import MAX_SIGNER_ID_BYTES
from trust.sm2.select import get_backend

SM2_CURVE_OID = "1.2.156.10197.1.301"
ID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SIGNER_IDS = [
    DEFAULT_SIGNER_ID,
    b"",
    b"ALICE123@YAHOO.COM",
    "国家电子政务签章 ✓".encode(),
    bytes(range(256)) * 4,  # long, binary
]
ENGINES = ["openssl", "pure"]


# Minimal SPKI / PKCS#8 (RFC 5480 / RFC 5915 shapes) built here, so the test does not
# depend on the SM2 curve being registered in asn1crypto's global tables.
class _AlgorithmIdentifier(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.ObjectIdentifier)]


class _SubjectPublicKeyInfo(core.Sequence):
    _fields = [("algorithm", _AlgorithmIdentifier), ("public_key", core.OctetBitString)]


class _ECPrivateKey(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("private_key", core.OctetString),
        ("public_key", core.OctetBitString, {"explicit": 1}),
    ]


class _PrivateKeyInfo(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("algorithm", _AlgorithmIdentifier),
        ("private_key", core.OctetString),
    ]


_ALGORITHM = {"algorithm": ID_EC_PUBLIC_KEY, "parameters": SM2_CURVE_OID}


def spki_pem(point: bytes) -> bytes:
    spki = _SubjectPublicKeyInfo({"algorithm": _ALGORITHM, "public_key": point})
    return bytes(pem.armor("PUBLIC KEY", spki.dump()))


def pkcs8_pem(scalar: bytes, point: bytes) -> bytes:
    ec_key = _ECPrivateKey({"version": 1, "private_key": scalar, "public_key": point})
    info = _PrivateKeyInfo({"version": 0, "algorithm": _ALGORITHM, "private_key": ec_key.dump()})
    return bytes(pem.armor("PRIVATE KEY", info.dump()))


@pytest.fixture(scope="module")
def openssl_cli() -> str:
    path = shutil.which("openssl")
    if path is None:
        need_service("openssl CLI", "openssl not on PATH")
    assert path is not None
    return path


class Cli:
    def __init__(self, exe: str, workdir: Path, backend: SM2Backend, key: SM2PrivateHandle) -> None:
        self.exe = exe
        self.dir = workdir
        self.pub = workdir / "pub.pem"
        self.priv = workdir / "key.pem"
        self.pub.write_bytes(spki_pem(key.public_bytes()))
        self.priv.write_bytes(pkcs8_pem(backend.private_scalar(key), key.public_bytes()))

    def _file(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        return path

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([self.exe, "pkeyutl", *args], capture_output=True, timeout=60)

    @staticmethod
    def _distid(signer_id: bytes) -> str:
        # hexdistid carries empty, binary and non-ASCII IDs unchanged.
        return f"hexdistid:{signer_id.hex()}"

    def verify(self, message: bytes, signature: bytes, signer_id: bytes) -> bool:
        res = self._run(
            "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", self._distid(signer_id),
            "-pubin", "-inkey", str(self.pub),
            "-in", str(self._file("msg", message)), "-sigfile", str(self._file("sig", signature)),
        )  # fmt: skip
        return res.returncode == 0 and b"Verified Successfully" in res.stdout

    def sign(self, message: bytes, signer_id: bytes) -> bytes:
        out = self.dir / "cli.sig"
        res = self._run(
            "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", self._distid(signer_id),
            "-inkey", str(self.priv), "-in", str(self._file("msg", message)), "-out", str(out),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr.decode()
        return out.read_bytes()

    def encrypt(self, plaintext: bytes) -> bytes:
        out = self.dir / "cli.ct"
        res = self._run(
            "-encrypt", "-pubin", "-inkey", str(self.pub),
            "-in", str(self._file("pt", plaintext)), "-out", str(out),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr.decode()
        return out.read_bytes()

    def decrypt(self, ciphertext: bytes) -> bytes:
        out = self.dir / "cli.pt"
        res = self._run(
            "-decrypt", "-inkey", str(self.priv),
            "-in", str(self._file("ct", ciphertext)), "-out", str(out),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr.decode()
        return out.read_bytes()


@pytest.fixture(params=ENGINES)
def signer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _other(name: str) -> str:
    return "pure" if name == "openssl" else "openssl"


@pytest.mark.openssl_cli
@pytest.mark.parametrize("signer_id", SIGNER_IDS, ids=lambda i: f"id{len(i)}")
def test_engine_signature_verifies_everywhere(
    openssl_cli: str, tmp_path: Path, signer: str, signer_id: bytes
) -> None:
    backend = get_backend(signer)
    key = backend.generate()
    cli = Cli(openssl_cli, tmp_path, backend, key)
    other = get_backend(_other(signer)).load_public(key.public_bytes())
    for size in (0, 1, 55, 64, 1000):
        message = os.urandom(size)
        sig = key.sign(message, signer_id)
        other.verify(message, sig, signer_id)
        assert cli.verify(message, sig, signer_id)
        assert not cli.verify(message + b"x", sig, signer_id)
        assert not cli.verify(message, sig, signer_id + b"x")


@pytest.mark.openssl_cli
@pytest.mark.parametrize("signer_id", SIGNER_IDS, ids=lambda i: f"id{len(i)}")
def test_cli_signature_verifies_with_both_engines(
    openssl_cli: str, tmp_path: Path, signer_id: bytes
) -> None:
    backend = get_backend("openssl")
    key = backend.generate()
    cli = Cli(openssl_cli, tmp_path, backend, key)
    for size in (0, 33, 500):
        message = os.urandom(size)
        sig = cli.sign(message, signer_id)
        for name in ENGINES:
            public = get_backend(name).load_public(key.public_bytes())
            public.verify(message, sig, signer_id)
            with pytest.raises(InvalidSignature):
                public.verify(message, sig, signer_id + b"?")


@pytest.mark.openssl_cli
def test_encryption_interoperates_with_cli(openssl_cli: str, tmp_path: Path, signer: str) -> None:
    backend = get_backend(signer)
    key = backend.generate()
    cli = Cli(openssl_cli, tmp_path, backend, key)
    for size in (1, 32, 33, 300):
        plaintext = os.urandom(size)
        assert cli.decrypt(key.public_handle().encrypt(plaintext)) == plaintext
        assert key.decrypt(cli.encrypt(plaintext)) == plaintext


@pytest.mark.openssl_cli
def test_cli_pem_keys_match_the_engine(openssl_cli: str, tmp_path: Path) -> None:
    """The test's own PEM writer must produce keys OpenSSL reads as the same SM2 key."""
    backend = get_backend("openssl")
    key = backend.generate()
    (tmp_path / "key.pem").write_bytes(pkcs8_pem(backend.private_scalar(key), key.public_bytes()))
    res = subprocess.run(
        [openssl_cli, "pkey", "-in", str(tmp_path / "key.pem"), "-pubout", "-outform", "DER"],
        capture_output=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == pem.unarmor(spki_pem(key.public_bytes()))[2]


CROSS = settings(max_examples=25, deadline=None)
ids = st.one_of(
    st.sampled_from(SIGNER_IDS), st.binary(max_size=MAX_SIGNER_ID_BYTES).map(lambda b: b[:64])
)


@CROSS
@given(message=st.binary(max_size=3000), signer_id=ids, signer=st.sampled_from(ENGINES))
def test_cross_engine_signatures(message: bytes, signer_id: bytes, signer: str) -> None:
    key = get_backend(signer).generate()
    other = get_backend(_other(signer))
    public = other.load_public(key.public_bytes())
    sig = key.sign(message, signer_id)
    public.verify(message, sig, signer_id)
    with pytest.raises(InvalidSignature):
        public.verify(message + b"\x00", sig, signer_id)
    # The same scalar loaded in the other engine signs for the same public key.
    twin = other.load_private(get_backend(signer).private_scalar(key))
    assert twin.public_bytes() == key.public_bytes()
    key.public_handle().verify(message, twin.sign(message, signer_id), signer_id)


@CROSS
@given(plaintext=st.binary(min_size=1, max_size=2000), signer=st.sampled_from(ENGINES))
def test_cross_engine_encryption(plaintext: bytes, signer: str) -> None:
    key = get_backend(signer).generate()
    other = get_backend(_other(signer))
    twin = other.load_private(get_backend(signer).private_scalar(key))
    assert twin.decrypt(key.public_handle().encrypt(plaintext)) == plaintext
    assert key.decrypt(twin.public_handle().encrypt(plaintext)) == plaintext
