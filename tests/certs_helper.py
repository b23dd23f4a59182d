"""A tiny certificate maker for the CMS and TSA tests, until ``ca/`` can issue test chains.

Built with asn1crypto and signed through ``trust.keys`` (SM2 with Z over the default ID).
CA engineer: once ``ca/`` issues certificates, these tests can switch to it and this goes.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from asn1crypto import algos, keys, x509

from trust.keys import KeyAlgorithm, PrivateKey

_SIGNATURE_OIDS = {
    KeyAlgorithm.SM2: "1.2.156.10197.1.501",
    KeyAlgorithm.ECDSA_P256: "1.2.840.10045.4.3.2",
    KeyAlgorithm.ECDSA_P384: "1.2.840.10045.4.3.3",
}
_RSA_SHA256 = "1.2.840.113549.1.1.11"


def _signature_algorithm(key: PrivateKey) -> algos.SignedDigestAlgorithm:
    oid = _SIGNATURE_OIDS.get(key.algorithm)
    if oid is None:  # RSA: PKCS#1 v1.5 identifiers carry NULL parameters
        return algos.SignedDigestAlgorithm({"algorithm": _RSA_SHA256, "parameters": None})
    return algos.SignedDigestAlgorithm({"algorithm": oid})


def make_certificate(
    common_name: str,
    key: PrivateKey,
    *,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    ca: bool = False,
    extended_key_usage: tuple[str, ...] = (),
    serial_number: int | None = None,
) -> x509.Certificate:
    """A certificate for ``key``: self-signed without ``issuer``; EKU marked critical."""
    name = x509.Name.build({"common_name": common_name, "organization_name": "Trust Tests"})
    spki = keys.PublicKeyInfo.load(key.public_bytes_spki())
    ski = spki.sha1
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    now = datetime.now(UTC).replace(microsecond=0)
    extensions = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": ca}},
        {
            "extn_id": "key_usage",
            "critical": True,
            "extn_value": {"key_cert_sign", "crl_sign"} if ca else {"digital_signature"},
        },
        {"extn_id": "key_identifier", "critical": False, "extn_value": ski},
        {
            "extn_id": "authority_key_identifier",
            "critical": False,
            "extn_value": {"key_identifier": issuer_cert.key_identifier if issuer_cert else ski},
        },
    ]
    if extended_key_usage:
        extensions.append(
            {"extn_id": "extended_key_usage", "critical": True, "extn_value": extended_key_usage}
        )
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial_number or secrets.randbits(64) | 1 << 63,
            "signature": _signature_algorithm(issuer_key),
            "issuer": issuer_cert.subject if issuer_cert else name,
            "validity": {
                "not_before": x509.Time(name="utc_time", value=now - timedelta(days=1)),
                "not_after": x509.Time(name="utc_time", value=now + timedelta(days=3650)),
            },
            "subject": name,
            "subject_public_key_info": spki,
            "extensions": extensions,
        }
    )
    return x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": _signature_algorithm(issuer_key),
            "signature_value": issuer_key.sign(tbs.dump()),
        }
    )


def make_chain(
    algorithm: KeyAlgorithm, *, extended_key_usage: tuple[str, ...] = ()
) -> tuple[x509.Certificate, x509.Certificate, PrivateKey]:
    """(root certificate, leaf certificate, leaf key), both keys of ``algorithm``."""
    from trust.keys import generate

    root_key = generate(algorithm)
    root = make_certificate(f"Test Root {algorithm}", root_key, ca=True)
    leaf_key = generate(algorithm)
    leaf = make_certificate(
        f"Test Signer {algorithm}",
        leaf_key,
        issuer=(root, root_key),
        extended_key_usage=extended_key_usage,
    )
    return root, leaf, leaf_key
