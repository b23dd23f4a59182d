"""Test support for the seal tests: sample files, fresh SM2 identities with self-signed
certificates, and a ready-made v4 seal and signature from the builder."""

from __future__ import annotations

import os
import secrets
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import keys, x509

import trust.oids  # noqa: F401  (registers sm3_sm2 with asn1crypto)
from ca.keystore_source import build_certificate_authority
from ca.service import CertificateAuthority, CreateCaRequest
from ca.signer_store import SqlSignerStore
from ca.signers import CreateSignerRequest, IssueSpec, SignerRegistry
from keystore.kek.local import LocalKek
from keystore.model import Actor, Algorithm, GenerateRequest, Purpose
from keystore.service import KeyStore
from seals.build import build_seal, build_seal_info, build_signature, build_tbs_sign
from seals.parse import CertDigest
from seals.service import ApplyRequest, SealService, Timestamper
from seals.wiring import build_seal_service
from trust import migrations
from trust.audit import AuditLog
from trust.clock import FakeClock
from trust.db import Database
from trust.keys import KeyAlgorithm, SM2PrivateKey, generate
from trust.settings import Settings
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


# --- the registry: a seal service over a real key store and CA --------------------


@dataclass(frozen=True)
class StampingSigner:
    signer_id: str
    certificate: bytes  # DER, issued by the CA under the seal_signer profile
    serial_hex: str


ADMIN = Actor("test-admin", frozenset({"key_admin", "ca_operator"}))
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@dataclass
class SealEnv:
    db: Database
    clock: FakeClock
    keystore: KeyStore
    ca: CertificateAuthority
    issuing_ca_id: str
    root_certificate: bytes
    issuing_certificate: bytes
    signers: SignerRegistry
    service: SealService
    audit: AuditLog
    settings: Settings

    def close(self) -> None:
        self.keystore.close()
        self.db.dispose()

    def add_signer(self, label: str, *, validity_days: int = 365) -> StampingSigner:
        """A signer (registry entry) over a new key-store key with a seal_signer certificate."""
        key = self.keystore.generate(
            GenerateRequest(label=label, algorithm=Algorithm.SM2, purpose=Purpose.SEAL), ADMIN
        )
        spec = IssueSpec(
            self.issuing_ca_id,
            "seal_signer",
            {"C": "CN", "O": "测试单位", "CN": f"签章人 {label}"},
            validity_days=validity_days,
        )
        info = self.signers.create(CreateSignerRequest(label, key.id, issue=spec), ADMIN)
        assert info.certificate_serial is not None
        return StampingSigner(info.id, info.certificate_der, info.certificate_serial)

    def apply(self, *signers: StampingSigner, applicant: str = "officer-a", **fields: Any) -> str:
        values: dict[str, Any] = {
            "seal_type": "contract",
            "name": "测试合同专用章",
            "organization": "测试单位",
            "picture": PNG,
            "picture_type": "PNG",
            "width_mm": 40,
            "height_mm": 40,
            "valid_start": self.clock.now() - timedelta(days=1),
            "valid_end": self.clock.now() + timedelta(days=100),
            "signer_certificates": tuple(s.certificate for s in signers),
        }
        values.update(fields)
        return self.service.apply(ApplyRequest(**values), actor=applicant).esid

    def active_seal(self, *signers: StampingSigner, **fields: Any) -> str:
        esid = self.apply(*signers, **fields)
        self.service.approve(esid, actor="officer-b")
        self.service.make(esid, actor="officer-b")
        return esid


def seal_env(url: str, *, timestamper: Timestamper | None = None, **settings: Any) -> SealEnv:
    config = Settings(database_url=url, **settings)
    db = Database(url)
    migrations.upgrade(db)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    audit = AuditLog(db, clock)
    keystore = KeyStore(db, LocalKek(os.urandom(16), source="test"), clock=clock, audit=audit)
    ca = build_certificate_authority(config, db, keystore, clock, audit)
    root = ca.create_ca(CreateCaRequest(config.ca_default_sm2_root_name, KeyAlgorithm.SM2))
    issuing = ca.create_ca(
        CreateCaRequest(config.ca_default_sm2_issuing_name, KeyAlgorithm.SM2, parent_id=root.id)
    )
    signers = SignerRegistry(SqlSignerStore(db), keystore, ca, clock, audit)
    service = build_seal_service(
        config, db, keystore, ca, clock, audit, signers=signers, timestamper=timestamper
    )
    return SealEnv(
        db,
        clock,
        keystore,
        ca,
        issuing.id,
        ca.chain(root.id)[0],
        ca.chain(issuing.id)[0],
        signers,
        service,
        audit,
        config,
    )
