"""Test support for the seal tests: sample files, fresh SM2 identities with self-signed
certificates, and a ready-made v4 seal and signature from the builder."""

from __future__ import annotations

import secrets
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys, x509

import trust.oids  # noqa: F401  (registers sm3_sm2 with asn1crypto)
from seals.build import build_seal, build_seal_info, build_signature, build_tbs_sign
from seals.parse import CertDigest
from trust.keys import KeyAlgorithm, SM2PrivateKey, generate
from trust.sm3 import sm3

VECTORS = Path(__file__).parent / "vectors" / "seals"
OFD_SIGN_DIR = "Doc_0/Signs/Sign_0/"
NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def ofd_signature(name: str) -> tuple[bytes, bytes]:
    """(SignedValue.dat, Signature.xml) of the first signature in an OFD package."""
    with zipfile.ZipFile(VECTORS / name) as package:
        return (
            package.read(OFD_SIGN_DIR + "SignedValue.dat"),
            package.read(OFD_SIGN_DIR + "Signature.xml"),
        )


@dataclass(frozen=True)
class Identity:
    key: SM2PrivateKey
    cert: bytes  # DER, self-signed with SM3withSM2


def identity(common_name: str) -> Identity:
    key = generate(KeyAlgorithm.SM2)
    assert isinstance(key, SM2PrivateKey)
    name = x509.Name.build({"common_name": common_name})
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(64) | 1 << 63,
            "signature": {"algorithm": "sm3_sm2"},
            "issuer": name,
            "validity": {
                "not_before": x509.Time(name="utc_time", value=NOW - timedelta(days=1)),
                "not_after": x509.Time(name="utc_time", value=NOW + timedelta(days=365)),
            },
            "subject": name,
            "subject_public_key_info": keys.PublicKeyInfo.load(key.public_bytes_spki()),
        }
    )
    cert = x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": "sm3_sm2"},
            "signature_value": key.sign(tbs.dump()),
        }
    )
    return Identity(key, cert.dump())


def seal_info(
    signers: list[bytes] | None = None,
    digests: list[CertDigest] | None = None,
    valid_start: datetime = NOW - timedelta(days=30),
    valid_end: datetime = NOW + timedelta(days=30),
) -> bytes:
    return build_seal_info(
        es_id="11010000000001",
        vendor_id="TRUSTTEST",
        seal_type=1,
        name="测试专用章",
        certificates=signers or (),
        cert_digests=digests or (),
        create_date=valid_start,
        valid_start=valid_start,
        valid_end=valid_end,
        picture_type="PNG",
        picture=b"\x89PNG\r\n\x1a\n" + bytes(64),
        picture_width=40,
        picture_height=40,
    )


def make_signature(
    maker: Identity,
    signer: Identity,
    original: bytes = b"<Signature/>",
    *,
    info: bytes | None = None,
    time_info: datetime = NOW,
) -> bytes:
    """A v4 SES_Signature by ``signer`` under a seal by ``maker`` listing ``signer``."""
    seal = build_seal(info or seal_info([signer.cert]), maker.cert, maker.key.sign)
    tbs = build_tbs_sign(
        seal=seal,
        time_info=time_info,
        data_hash=sm3(original),
        property_info="/Doc_0/Signs/Sign_0/Signature.xml",
    )
    return build_signature(tbs, signer.cert, signer.key.sign)
