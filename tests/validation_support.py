"""Test PKIs for the validation tests: ECDSA/RSA with pyca's x509 builders (certificates,
CRLs, OCSP responses), SM2 with asn1crypto signed through ``trust.keys`` (pyca cannot sign
SM2), and the third-party SM2 certificates under ``tests/vectors/certs``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import algos, cms, crl, keys, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp as cocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from timestamp import TimestampAuthority, TokenRecord, TsaUnit
from trust.clock import Clock
from trust.cms import (
    KeySigner,
    add_unsigned_attributes,
    build_signed_data,
    timestamp_token_attribute,
    verify_signed_data,
)
from trust.cms.algorithms import digest
from trust.errors import Conflict
from trust.keys import KeyAlgorithm, PrivateKey, generate, load_private_key
from trust.validation.certs import load_certificates

VECTORS = Path(__file__).parent / "vectors" / "certs"
T0 = datetime(2025, 1, 1, tzinfo=UTC)  # every test PKI is valid from T0 for ten years


def vector_certs(name: str) -> list[x509.Certificate]:
    return load_certificates((VECTORS / name).read_bytes())


# --- ECDSA / RSA with pyca -----------------------------------------------------------


@dataclass
class PycaNode:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: cx509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _name(cn: str) -> cx509.Name:
    return cx509.Name(
        [
            cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "Validation Tests"),
            cx509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def pyca_key(kind: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def pyca_cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    issuer: PycaNode | None = None,
    *,
    ca: bool = False,
    not_before: datetime = T0,
    not_after: datetime = T0 + timedelta(days=3650),
    crl_url: str | None = None,
    ocsp_url: str | None = None,
    extended_key_usage: tuple[cx509.ObjectIdentifier, ...] = (),
) -> PycaNode:
    signer_key = issuer.key if issuer else key
    builder = (
        cx509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(cx509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            cx509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(cx509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            cx509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    if extended_key_usage:
        builder = builder.add_extension(cx509.ExtendedKeyUsage(extended_key_usage), True)
    if crl_url:
        point = cx509.DistributionPoint(
            [cx509.UniformResourceIdentifier(crl_url)], None, None, None
        )
        builder = builder.add_extension(cx509.CRLDistributionPoints([point]), False)
    if ocsp_url:
        access = cx509.AccessDescription(
            cx509.AuthorityInformationAccessOID.OCSP, cx509.UniformResourceIdentifier(ocsp_url)
        )
        builder = builder.add_extension(cx509.AuthorityInformationAccess([access]), False)
    return PycaNode(key, builder.sign(signer_key, hashes.SHA256()))


def pyca_crl(
    issuer: PycaNode,
    revoked: tuple[tuple[PycaNode, datetime], ...] = (),
    *,
    this_update: datetime,
    next_update: datetime | None = None,
) -> bytes:
    builder = (
        cx509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(next_update or this_update + timedelta(days=7))
        .add_extension(cx509.CRLNumber(1), False)
    )
    for node, when in revoked:
        builder = builder.add_revoked_certificate(
            cx509.RevokedCertificateBuilder()
            .serial_number(node.cert.serial_number)
            .revocation_date(when)
            .add_extension(cx509.CRLReason(cx509.ReasonFlags.key_compromise), False)
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def pyca_ocsp(
    issuer: PycaNode,
    subject: PycaNode,
    *,
    this_update: datetime,
    revoked_at: datetime | None = None,
) -> bytes:
    """An OCSP response signed by the issuing CA itself."""
    status = cocsp.OCSPCertStatus.REVOKED if revoked_at else cocsp.OCSPCertStatus.GOOD
    builder = (
        cocsp.OCSPResponseBuilder()
        .add_response(
            cert=subject.cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=this_update,
            next_update=this_update + timedelta(days=1),
            revocation_time=revoked_at,
            revocation_reason=cx509.ReasonFlags.key_compromise if revoked_at else None,
        )
        .responder_id(cocsp.OCSPResponderEncoding.HASH, issuer.cert)
    )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class PycaPki:
    root: PycaNode
    sub: PycaNode
    leaf: PycaNode


def pyca_pki(kind: str = "ecdsa", *, revocation_urls: bool = False) -> PycaPki:
    """Root, sub CA and leaf; with ``revocation_urls`` the leaf names a CRL and an OCSP
    location (certvalidator consults OCSP only for certificates that name one)."""
    crl_url = "http://crl.example.test/sub.crl" if revocation_urls else None
    ocsp_url = "http://ocsp.example.test" if revocation_urls else None
    root = pyca_cert("Test Root", pyca_key(kind), ca=True)
    sub = pyca_cert("Test Sub CA", pyca_key(kind), root, ca=True)
    leaf = pyca_cert("Test Leaf", pyca_key(kind), sub, crl_url=crl_url, ocsp_url=ocsp_url)
    return PycaPki(root, sub, leaf)


# --- SM2 with asn1crypto -------------------------------------------------------------


@dataclass
class SM2Node:
    key: PrivateKey
    cert: x509.Certificate
    serial: int = field(default=0)


def sm2_cert(
    cn: str,
    issuer: SM2Node | None = None,
    *,
    ca: bool = False,
    key: PrivateKey | None = None,
    signer_id: bytes | None = None,
) -> SM2Node:
    """An SM2 certificate signed with Z over ``signer_id`` (default ID when None)."""
    key = key or generate(KeyAlgorithm.SM2)
    name = x509.Name.build({"organization_name": "Validation Tests", "common_name": cn})
    serial = int.from_bytes(cn.encode()[:8].ljust(8, b"\0"), "big") | 1
    usage = {"key_cert_sign", "crl_sign"} if ca else {"digital_signature", "non_repudiation"}
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": {"algorithm": "sm3_sm2"},
            "issuer": issuer.cert.subject if issuer else name,
            "validity": {
                "not_before": x509.Time({"utc_time": T0}),
                "not_after": x509.Time({"utc_time": T0 + timedelta(days=3650)}),
            },
            "subject": name,
            "subject_public_key_info": keys.PublicKeyInfo.load(key.public_bytes_spki()),
            "extensions": [
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": ca}},
                {"extn_id": "key_usage", "critical": True, "extn_value": usage},
            ],
        }
    )
    signer = issuer.key if issuer else key
    signature = signer.sign(tbs.dump(), signer_id=signer_id)
    cert = x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": "sm3_sm2"},
            "signature_value": signature,
        }
    )
    return SM2Node(key, x509.Certificate.load(cert.dump()), serial)


def sm2_crl(
    issuer: SM2Node, revoked: list[tuple[SM2Node, datetime]], this_update: datetime
) -> bytes:
    tbs = crl.TbsCertList(
        {
            "version": "v2",
            "signature": {"algorithm": "sm3_sm2"},
            "issuer": issuer.cert.subject,
            "this_update": x509.Time({"utc_time": this_update}),
            "next_update": x509.Time({"utc_time": this_update + timedelta(days=7)}),
            "revoked_certificates": [
                {"user_certificate": node.serial, "revocation_date": x509.Time({"utc_time": when})}
                for node, when in revoked
            ],
        }
    )
    signed = crl.CertificateList(
        {
            "tbs_cert_list": tbs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sm3_sm2"}),
            "signature": issuer.key.sign(tbs.dump()),
        }
    )
    return signed.dump()


# --- CMS and timestamps over the pyca PKI ---------------------------------------------


def keys_private(node: PycaNode) -> PrivateKey:
    """The pyca key as a ``trust.keys`` key, to sign CMS with ``trust.cms``."""
    return load_private_key(
        node.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def pyca_cms(node: PycaNode, content: bytes, *, detached: bool = False) -> bytes:
    """CMS SignedData by ``node`` (trust.cms, RFC 5652 profile, ESS v2)."""
    signer = KeySigner(keys_private(node), x509.Certificate.load(node.der))
    return build_signed_data(content, signer, detached=detached)


class MemoryTokenLog:
    """A ``TokenLog`` for TSAs in tests that need no database."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}

    def add(self, record: TokenRecord) -> None:
        if record.serial_hex in self.records:
            raise Conflict("serial taken")
        self.records[record.serial_hex] = record

    def get(self, serial_hex: str) -> TokenRecord | None:
        return self.records.get(serial_hex)


TSA_POLICY = "1.2.156.112233.3.7"


def pyca_tsa(
    issuer: PycaNode, clock: Clock, *, time_stamping: bool = True
) -> tuple[TimestampAuthority, PycaNode]:
    """A TSA whose (ECDSA) certificate ``issuer`` signed, critical EKU timeStamping unless
    ``time_stamping`` is false."""
    eku = (ExtendedKeyUsageOID.TIME_STAMPING,) if time_stamping else ()
    node = pyca_cert("Test TSA", pyca_key("ecdsa"), issuer, extended_key_usage=eku)
    signer = KeySigner(keys_private(node), x509.Certificate.load(node.der))
    unit = TsaUnit("test", signer, TSA_POLICY, chain=(issuer_cert(issuer),))  # accuracy 1 s
    return TimestampAuthority([unit], MemoryTokenLog(), clock), node


def issuer_cert(node: PycaNode) -> x509.Certificate:
    return x509.Certificate.load(node.der)


def stamp(cms_der: bytes, tsa: TimestampAuthority, *, over: bytes | None = None) -> bytes:
    """``cms_der`` with a signature timestamp from ``tsa`` over its first signature value
    (or over ``over``, to make a token that stamps something else)."""
    signature = verify_signed_data(cms_der).signers[0].signature
    token = tsa.issue("sha256", digest("sha256", over if over is not None else signature)).token
    return add_unsigned_attributes(cms_der, [timestamp_token_attribute(token)])


def cosign(*signed: bytes) -> bytes:
    """One SignedData with the SignerInfos (and certificates) of several made over the
    same content: a co-signed document."""
    first = cms.ContentInfo.load(signed[0])
    parts = [cms.ContentInfo.load(d)["content"] for d in signed]
    algorithms = {a["algorithm"].dotted: a for p in parts for a in p["digest_algorithms"]}
    certificates = {c.dump(): c for p in parts for c in p["certificates"]}
    content = first["content"].copy()
    content["digest_algorithms"] = list(algorithms.values())
    content["certificates"] = list(certificates.values())
    # Loaded from its encoding so that it keeps this order (a SET OF built from values
    # is sorted by asn1crypto, which would make "first" and "second" depend on the keys).
    infos = b"".join(si.dump() for p in parts for si in p["signer_infos"])
    content["signer_infos"] = cms.SignerInfos.load(_tlv(0x31, infos))
    return cms.ContentInfo({"content_type": first["content_type"], "content": content}).dump()


def _tlv(tag: int, value: bytes) -> bytes:
    if len(value) < 0x80:
        return bytes([tag, len(value)]) + value
    size = len(value).to_bytes((len(value).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


def tamper_signature(signed: bytes) -> bytes:
    """``signed`` with the last byte of its (only) signature value flipped."""
    signature = verify_signed_data(signed).signers[0].signature
    assert signed.count(signature) == 1
    return signed.replace(signature, signature[:-1] + bytes([signature[-1] ^ 1]))
