"""GM/T 0006 (GB/T 33560) object identifiers, registered with asn1crypto once.

Importing this module is enough: asn1crypto then parses and names the SM2
curve, SM3, SM3withSM2, SM2-1, SM2 encryption, SM4, HMAC-SM3 and the GM/T 0010
(GB/T 35275) content types. Registration mutates asn1crypto's class-level
tables, so it runs exactly once per process, at first import.

Sources for every OID: ``standards.md`` §2 (gmsm, GmSSL, ofdrw).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from asn1crypto import algos, cms, core, keys

# --- constants (dotted strings) ----------------------------------------------

GM_ARC = "1.2.156.10197"

SM4 = "1.2.156.10197.1.104"  # CFCA writes the bare OID to mean SM4-CBC
SM4_ECB = "1.2.156.10197.1.104.1"
SM4_CBC = "1.2.156.10197.1.104.2"
SM4_GCM = "1.2.156.10197.1.104.8"

SM2_CURVE = "1.2.156.10197.1.301"  # namedCurve sm2p256v1, parameter of id-ecPublicKey
SM2_SIGN = "1.2.156.10197.1.301.1"  # SM2-1, GB/T 35275 SignerInfo digestEncryptionAlgorithm
SM2_KEY_EXCHANGE = "1.2.156.10197.1.301.2"  # GmSSL uses it for encryption: never emitted
SM2_ENCRYPT = "1.2.156.10197.1.301.3"  # SM2-3, KeyTransRecipientInfo keyEncryptionAlgorithm

SM9 = "1.2.156.10197.1.302"
SM9_SIGN = "1.2.156.10197.1.302.1"
SM9_KEY_AGREEMENT = "1.2.156.10197.1.302.2"
SM9_ENCRYPT = "1.2.156.10197.1.302.3"

SM3 = "1.2.156.10197.1.401"
HMAC_SM3 = "1.2.156.10197.1.401.2"

SM3_WITH_SM2 = "1.2.156.10197.1.501"
SM3_WITH_RSA = "1.2.156.10197.1.504"

GM_CMS_DATA = "1.2.156.10197.6.1.4.2.1"
GM_CMS_SIGNED_DATA = "1.2.156.10197.6.1.4.2.2"
GM_CMS_ENVELOPED_DATA = "1.2.156.10197.6.1.4.2.3"
GM_CMS_SIGNED_AND_ENVELOPED_DATA = "1.2.156.10197.6.1.4.2.4"
GM_CMS_ENCRYPTED_DATA = "1.2.156.10197.6.1.4.2.5"
GM_CMS_KEY_AGREEMENT_INFO = "1.2.156.10197.6.1.4.2.6"

# International OIDs the key and algorithm modules write.
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SECP256R1 = "1.2.840.10045.3.1.7"
SECP384R1 = "1.3.132.0.34"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
RSASSA_PSS = "1.2.840.113549.1.1.10"
RSAES_OAEP = "1.2.840.113549.1.1.7"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3"

# asn1crypto names given to the GM OIDs (the ``.native`` value after parsing).
SM2_CURVE_NAME = "sm2p256v1"

_DIGESTS = {SM3: "sm3"}
_HMACS = {HMAC_SM3: "sm3"}  # HmacAlgorithmId names the hash, like 'sha256'
_SIGNED_DIGESTS = {
    SM3_WITH_SM2: "sm3_sm2",
    SM2_SIGN: "sm2",  # digest given elsewhere (SignerInfo), like asn1crypto's 'ecdsa'
    SM3_WITH_RSA: "sm3_rsa",
}
# signature_algo / hash_algo for the names above; SM2 always hashes with SM3.
_SIGNATURE_ALGO = {"sm3_sm2": "sm2", "sm2": "sm2", "sm3_rsa": "rsassa_pkcs1v15"}
_HASH_ALGO = {"sm3_sm2": "sm3", "sm2": "sm3", "sm3_rsa": "sm3"}
_CIPHERS = {SM4: "sm4", SM4_ECB: "sm4_ecb", SM4_CBC: "sm4_cbc", SM4_GCM: "sm4_gcm"}
_KEY_ENCRYPTIONS = {SM2_ENCRYPT: "sm2_encrypt"}
_CONTENT_TYPES = {
    GM_CMS_DATA: "sm2_data",
    GM_CMS_SIGNED_DATA: "sm2_signed_data",
    GM_CMS_ENVELOPED_DATA: "sm2_enveloped_data",
    GM_CMS_SIGNED_AND_ENVELOPED_DATA: "sm2_signed_and_enveloped_data",
    GM_CMS_ENCRYPTED_DATA: "sm2_encrypted_data",
    GM_CMS_KEY_AGREEMENT_INFO: "sm2_key_agreement_info",
}
# GM content types share the PKCS#7 structures (GB/T 35275 is PKCS#7 v1.5).
_CONTENT_SPECS: dict[str, type[core.Asn1Value]] = {
    "sm2_data": core.OctetString,
    "sm2_signed_data": cms.SignedData,
    "sm2_enveloped_data": cms.EnvelopedData,
    "sm2_signed_and_enveloped_data": cms.SignedAndEnvelopedData,
    "sm2_encrypted_data": cms.EncryptedData,
}


class SM4GcmParams(core.Sequence):
    """GCMParameters (RFC 5084) used with SM4-GCM: nonce and tag length, default 12."""

    _fields = [
        ("nonce", core.OctetString),
        ("icv_len", core.Integer, {"default": 12}),
    ]


_CIPHER_PARAMS: dict[str, type[core.Asn1Value]] = {
    "sm4": core.OctetString,  # the CBC IV
    "sm4_cbc": core.OctetString,
    "sm4_gcm": SM4GcmParams,
}
_CIPHER_MODE = {"sm4": "cbc", "sm4_ecb": "ecb", "sm4_cbc": "cbc", "sm4_gcm": "gcm"}

# The friendly name of every registered GM OID, for reports and error messages.
NAMES: Mapping[str, str] = {
    SM2_CURVE: SM2_CURVE_NAME,
    SM2_KEY_EXCHANGE: "sm2_key_exchange",
    SM9: "sm9",
    SM9_SIGN: "sm9_sign",
    SM9_KEY_AGREEMENT: "sm9_key_agreement",
    SM9_ENCRYPT: "sm9_encrypt",
    **_DIGESTS,
    HMAC_SM3: "hmac_sm3",
    **_SIGNED_DIGESTS,
    **_CIPHERS,
    **_KEY_ENCRYPTIONS,
    **_CONTENT_TYPES,
}


def _register(cls: type[core.ObjectIdentifier], table: Mapping[str, str]) -> None:
    for oid, name in table.items():
        cls._map[oid] = name
        # The reverse map is either declared by the class or built lazily on
        # first use; when it already exists it must learn the new names too.
        if cls._reverse_map is not None:
            cls._reverse_map[name] = oid


def _algorithm_name(value: Any) -> Any:
    return value["algorithm"].native


def _key_algorithm_name(value: Any) -> Any:
    return value.algorithm


def _extend_property(
    cls: type[core.Asn1Value],
    attr: str,
    table: Mapping[str, Callable[[Any], Any]],
    name_of: Callable[[Any], Any] = _algorithm_name,
) -> None:
    """Make an asn1crypto property answer for the GM names, which it keeps in local maps."""
    original = getattr(cls, attr)

    def getter(self: Any) -> Any:
        handler = table.get(name_of(self))
        return handler(self) if handler is not None else original.fget(self)

    setattr(cls, attr, property(getter, doc=original.__doc__))


def _extend_spec(
    cls: type[core.Sequence],
    field: str,
    name_of: Callable[[Any], Any],
    table: Mapping[str, Any],
) -> None:
    """Add choices to a field spec callback that holds its choices in a local dict."""
    original = cls._spec_callbacks[field]

    def spec(self: Any) -> Any:
        name = name_of(self)
        return table[name] if name in table else original(self)

    cls._spec_callbacks = {**cls._spec_callbacks, field: spec}


def _curve(params: Any) -> tuple[str, Any]:
    """The (kind, value) pair asn1crypto's ``curve`` gives for id-ecPublicKey keys."""
    return params.name, None if params.name == "implicit_ca" else params.chosen.native


def _const(value: object) -> Callable[[Any], object]:
    return lambda _self: value


def _register_sm2_key_algorithm() -> None:
    """Some producers (Tongsuo, OpenSSL 1.1.1 ``EVP_PKEY_SM2``) write the curve OID as the
    key algorithm itself, with the curve OID again as parameter. Parse those like EC keys."""
    _register(keys.PublicKeyAlgorithmId, {SM2_CURVE: "sm2"})
    _register(keys.PrivateKeyAlgorithmId, {SM2_CURVE: "sm2"})
    keys.PublicKeyAlgorithm._oid_specs["sm2"] = keys.ECDomainParameters
    keys.PrivateKeyAlgorithm._oid_specs["sm2"] = keys.ECDomainParameters
    _extend_spec(
        keys.PublicKeyInfo,
        "public_key",
        lambda v: v["algorithm"]["algorithm"].native,
        {"sm2": (keys.ECPointBitString, None)},
    )
    _extend_spec(
        keys.PrivateKeyInfo,
        "private_key",
        lambda v: v["private_key_algorithm"]["algorithm"].native,
        {"sm2": keys.ECPrivateKey},
    )
    pub, priv = keys.PublicKeyInfo, keys.PrivateKeyInfo
    sm2_curve_pub = {"sm2": lambda v: _curve(v["algorithm"]["parameters"])}
    sm2_curve_priv = {"sm2": lambda v: _curve(v["private_key_algorithm"]["parameters"])}
    _extend_property(pub, "curve", sm2_curve_pub, _key_algorithm_name)
    _extend_property(priv, "curve", sm2_curve_priv, _key_algorithm_name)
    _extend_property(pub, "bit_size", {"sm2": _const(256)}, _key_algorithm_name)
    _extend_property(priv, "bit_size", {"sm2": _const(256)}, _key_algorithm_name)


def _register_all() -> None:
    keys.NamedCurve.register(SM2_CURVE_NAME, SM2_CURVE, 32)
    _register_sm2_key_algorithm()
    _register(algos.DigestAlgorithmId, _DIGESTS)
    _register(algos.HmacAlgorithmId, _HMACS)
    _register(algos.SignedDigestAlgorithmId, _SIGNED_DIGESTS)
    _register(algos.EncryptionAlgorithmId, _CIPHERS)
    _register(cms.KeyEncryptionAlgorithmId, _KEY_ENCRYPTIONS)
    _register(cms.ContentType, _CONTENT_TYPES)
    # AnyAlgorithmId copies the three maps above only once, on first use.
    _register(algos.AnyAlgorithmId, {**_DIGESTS, **_SIGNED_DIGESTS, **_CIPHERS})

    algos.EncryptionAlgorithm._oid_specs.update(_CIPHER_PARAMS)
    cms.ContentInfo._oid_specs.update(_CONTENT_SPECS)
    cms.EncapsulatedContentInfo._oid_specs.update(
        {k: v for k, v in _CONTENT_SPECS.items() if k != "sm2_data"}
    )

    sda = algos.SignedDigestAlgorithm
    _extend_property(sda, "signature_algo", {k: _const(v) for k, v in _SIGNATURE_ALGO.items()})
    _extend_property(sda, "hash_algo", {k: _const(v) for k, v in _HASH_ALGO.items()})

    enc = algos.EncryptionAlgorithm
    sm4_names = list(_CIPHER_MODE)
    _extend_property(enc, "encryption_cipher", {n: _const("sm4") for n in sm4_names})
    _extend_property(enc, "encryption_mode", {n: _const(m) for n, m in _CIPHER_MODE.items()})
    _extend_property(enc, "encryption_block_size", {n: _const(16) for n in sm4_names})
    _extend_property(enc, "key_length", {n: _const(16) for n in sm4_names})
    _extend_property(
        enc,
        "encryption_iv",
        {
            "sm4": lambda self: self["parameters"].native,
            "sm4_cbc": lambda self: self["parameters"].native,
            "sm4_ecb": _const(None),
            "sm4_gcm": lambda self: self["parameters"]["nonce"].native,
        },
    )


_register_all()
