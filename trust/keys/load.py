"""Loading keys from PKCS#8 / SEC1 / SPKI, DER or PEM, and generating new ones.

The outer structure is parsed with asn1crypto first, so that the algorithm and
curve can be named (and SM2 routed to ``trust.keys.sm2``, since pyca cannot load
SM2 keys); ECDSA and RSA keys are then handed to pyca, which validates them.
Every malformed input ends as a ``TrustError``: ``MalformedEncoding`` (PEM),
``MalformedASN1`` (DER), ``UnknownOID`` (an algorithm or curve nobody knows),
``UnsupportedAlgorithm`` (known but not offered here) or ``InvalidKey``.
"""

from __future__ import annotations

from asn1crypto import core
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import UnsupportedAlgorithm as PycaUnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trust import oids
from trust.errors import InvalidKey, MalformedEncoding, UnknownOID, UnsupportedAlgorithm
from trust.keys.base import KeyAlgorithm, PrivateKey, PublicKey, is_pem, load_der, pem_blocks
from trust.keys.pyca import (
    EC_CURVES,
    ECDSAPrivateKey,
    ECDSAPublicKey,
    RSAPrivateKey,
    RSAPublicKey,
)
from trust.keys.sm2 import SM2PrivateKey, SM2PublicKey, curve_oid, ec_private_key_to_sm2
from trust.sm2.backend import SM2Backend

_PKCS8 = "PRIVATE KEY"
_SEC1_KINDS = ("EC PRIVATE KEY", "SM2 PRIVATE KEY")  # Tongsuo writes the latter for SM2
_PKCS1 = "RSA PRIVATE KEY"
_ENCRYPTED = "ENCRYPTED PRIVATE KEY"
_SPKI = "PUBLIC KEY"
# `openssl ecparam -genkey` writes an EC (or SM2) PARAMETERS block before the key.
_IGNORED_KINDS = ("EC PARAMETERS", "SM2 PARAMETERS")

# asn1crypto names of EC key algorithms; "sm2" is the SM2 OID used as the key algorithm
# itself (Tongsuo, OpenSSL 1.1.1), registered by trust.oids.
_EC_ALGORITHMS = ("ec", "sm2")


def generate(algorithm: KeyAlgorithm, *, sm2_backend: SM2Backend | None = None) -> PrivateKey:
    """A new private key. SM2 keys come from ``sm2_backend`` or the configured default."""
    algorithm = KeyAlgorithm(algorithm)
    if algorithm is KeyAlgorithm.SM2:
        return SM2PrivateKey.generate(sm2_backend)
    if algorithm in (KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384):
        return ECDSAPrivateKey.generate(algorithm)
    return RSAPrivateKey.generate(algorithm)


def load_private_key(data: bytes, *, sm2_backend: SM2Backend | None = None) -> PrivateKey:
    """A private key from unencrypted PKCS#8 (DER or PEM "PRIVATE KEY"), SEC1 PEM
    ("EC PRIVATE KEY", "SM2 PRIVATE KEY") or PKCS#1 PEM ("RSA PRIVATE KEY")."""
    if not is_pem(data):
        return _from_pkcs8(data, sm2_backend)
    kind, der = _single_block(data)
    if kind == _PKCS8:
        return _from_pkcs8(der, sm2_backend)
    if kind in _SEC1_KINDS:
        return _from_sec1(der, sm2_backend)
    if kind == _PKCS1:
        return _pyca_private(load_der(asn1_keys.RSAPrivateKey, der, "RSA private key").dump())
    if kind == _ENCRYPTED:
        raise UnsupportedAlgorithm("encrypted private keys are not supported; decrypt first")
    raise MalformedEncoding(f"PEM block {kind!r} is not a private key")


def load_public_key(data: bytes, *, sm2_backend: SM2Backend | None = None) -> PublicKey:
    """A public key from SubjectPublicKeyInfo, DER or PEM ("PUBLIC KEY")."""
    der = data
    if is_pem(data):
        kind, der = _single_block(data)
        if kind != _SPKI:
            raise MalformedEncoding(f"PEM block {kind!r} is not a public key")
    opaque = load_der(_OpaquePublicKeyInfo, der, "SubjectPublicKeyInfo")
    algorithm = opaque["algorithm"]
    name = _check_key_algorithm(algorithm)
    if name in _EC_ALGORITHMS and _is_sm2(name, curve_oid(algorithm["parameters"])):
        info = load_der(asn1_keys.PublicKeyInfo, der, "SubjectPublicKeyInfo")
        return SM2PublicKey.from_point(info["public_key"].native, sm2_backend)
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, PycaUnsupportedAlgorithm):
        raise InvalidKey("public key does not load") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECDSAPublicKey(key)
    if isinstance(key, rsa.RSAPublicKey):
        return RSAPublicKey(key)
    raise InvalidKey("public key does not match its algorithm")


# --- helpers ---------------------------------------------------------------------


class _OpaquePublicKeyInfo(core.Sequence):
    """SubjectPublicKeyInfo with the key left unparsed: asn1crypto's own spec fails with a
    KeyError on an algorithm it does not know, which must be reported as an unknown OID."""

    _fields = [("algorithm", asn1_keys.PublicKeyAlgorithm), ("public_key", core.BitString)]


class _OpaquePrivateKeyInfo(core.Sequence):
    """PKCS#8 with the key left unparsed, for the same reason."""

    _fields = [
        ("version", core.Integer),
        ("private_key_algorithm", asn1_keys.PrivateKeyAlgorithm),
        ("private_key", core.OctetString),
        ("attributes", asn1_keys.Attributes, {"implicit": 0, "optional": True}),
    ]


def _check_key_algorithm(algorithm: core.Sequence) -> str:
    """The asn1crypto name of a key algorithm this module handles, or the right error."""
    name: str = algorithm["algorithm"].native
    if name in _EC_ALGORITHMS or name == "rsa":
        return name
    dotted = algorithm["algorithm"].dotted
    if name == dotted:
        raise UnknownOID(f"unknown key algorithm {dotted}")
    raise UnsupportedAlgorithm(f"key algorithm {name} is not supported")


def _single_block(data: bytes) -> tuple[str, bytes]:
    blocks = [(k, d) for k, d in pem_blocks(data) if k not in _IGNORED_KINDS]
    if len(blocks) != 1:
        raise MalformedEncoding(f"expected one key PEM block, found {len(blocks)}")
    return blocks[0]


def _is_sm2(algorithm_name: str, curve: str | None) -> bool:
    """Whether EC key parameters denote SM2; raise for curves this service does not offer."""
    if curve == oids.SM2_CURVE or (curve is None and algorithm_name == "sm2"):
        return True
    if curve is None:
        raise InvalidKey("EC key does not name its curve")
    if algorithm_name == "sm2":
        raise InvalidKey("SM2 key algorithm with a non-SM2 curve")
    curve_name = asn1_keys.NamedCurve.map(curve)
    if curve_name in EC_CURVES:
        return False
    if curve_name == curve:  # asn1crypto does not know it either
        raise UnknownOID(f"unknown elliptic curve {curve}")
    raise UnsupportedAlgorithm(f"elliptic curve {curve_name} is not supported")


def _from_pkcs8(der: bytes, backend: SM2Backend | None) -> PrivateKey:
    opaque = load_der(_OpaquePrivateKeyInfo, der, "PKCS#8 private key")
    algorithm = opaque["private_key_algorithm"]
    name = _check_key_algorithm(algorithm)
    if name in _EC_ALGORITHMS:
        curve = curve_oid(algorithm["parameters"])
        if _is_sm2(name, curve):
            info = load_der(asn1_keys.PrivateKeyInfo, der, "PKCS#8 private key")
            return ec_private_key_to_sm2(info["private_key"].parsed, curve, backend)
    return _pyca_private(der)


def _from_sec1(der: bytes, backend: SM2Backend | None) -> PrivateKey:
    ec_key = load_der(asn1_keys.ECPrivateKey, der, "SEC1 EC private key")
    curve = curve_oid(ec_key["parameters"])
    if _is_sm2("ec", curve):
        return ec_private_key_to_sm2(ec_key, curve, backend)
    return _pyca_private(der)


def _pyca_private(der: bytes) -> PrivateKey:
    """ECDSA or RSA private key from DER that asn1crypto has already parsed; pyca checks the
    key itself (point on curve, RSA consistency)."""
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, PycaUnsupportedAlgorithm):
        raise InvalidKey("private key does not load") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECDSAPrivateKey(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAPrivateKey(key)
    raise UnsupportedAlgorithm("key type is not supported")
