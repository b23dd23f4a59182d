"""The service's report-signing key: wiring of the key store and the CA for signed
validation reports (``trust.validation.signed_report``), made on first use.

The key is an SM2 ``sign`` key of the key store, owned by the principal
``verify-service`` and labelled ``verification-reports``; its certificate comes from
the default SM2 issuing CA under the ``seal_maker`` profile (signing key usages and no
extended key usage: the CA has no profile for report signing yet). Nothing new is
stored: the key is found again by owner and label, its certificate by subject among the
CA's good certificates, matched on the public key. Two workers making it at once each
make one; both are valid and later lookups take the newest. Every signature goes
through the key store, so each signed report is a ``key.sign`` audit record; the key
and its certificate are audited where they are made (key store, CA).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from asn1crypto import x509

from ca.issue import IssueRequest
from ca.service import CertificateAuthority
from keystore import KeyStore
from keystore.model import Actor, GenerateRequest, KeyState, Purpose
from keystore.model import Algorithm as StoredAlgorithm
from keystore.signer import KeystoreCmsSigner
from trust.errors import CaNotFound
from trust.settings import Settings
from trust.validation.certs import load_certificates

REPORT_ACTOR = Actor("verify-service", frozenset({"key_admin"}))
REPORT_KEY_LABEL = "verification-reports"
REPORT_PROFILE = "seal_maker"


@dataclass(frozen=True)
class ReportSigner:
    signer: KeystoreCmsSigner
    chain: tuple[x509.Certificate, ...]  # issuer first, up to the root


def _common_name(settings: Settings) -> str:
    return f"{settings.ca_default_organization} Verification Reports"


def _find(keystore: KeyStore, ca: CertificateAuthority, settings: Settings) -> ReportSigner | None:
    keys = [
        k
        for k in keystore.list_keys(REPORT_ACTOR)
        if k.owner == REPORT_ACTOR.id
        and k.label == REPORT_KEY_LABEL
        and k.purpose is Purpose.SIGN
        and k.state is KeyState.ACTIVE
    ]
    if not keys:
        return None
    certificates = ca.list_certificates(
        subject=_common_name(settings), status="good", profile=REPORT_PROFILE
    )
    for key in reversed(keys):  # newest first
        spki = keystore.public_key(key.id).spki_der
        for info in reversed(certificates):
            if info.certificate_pem is None:
                continue
            cert = load_certificates(info.certificate_pem.encode())[0]
            if cert.public_key.dump() == spki:
                chain = tuple(x509.Certificate.load(c) for c in ca.chain(info.ca_id))
                return ReportSigner(KeystoreCmsSigner(keystore, REPORT_ACTOR, key.id, cert), chain)
    return None


def _make(keystore: KeyStore, ca: CertificateAuthority, settings: Settings) -> ReportSigner:
    issuing = [c for c in ca.list_cas() if c.name == settings.ca_default_sm2_issuing_name]
    if not issuing:
        raise CaNotFound(
            f"no CA {settings.ca_default_sm2_issuing_name!r} to certify the report-signing "
            "key: run trustctl init"
        )
    key = keystore.generate(
        GenerateRequest(REPORT_KEY_LABEL, StoredAlgorithm.SM2, Purpose.SIGN), REPORT_ACTOR
    )
    issued = ca.issue(
        IssueRequest(
            issuing[0].id,
            REPORT_PROFILE,
            public_key=keystore.public_key(key.id).spki_der,
            subject={
                "country_name": "CN",
                "organization_name": settings.ca_default_organization,
                "common_name": _common_name(settings),
            },
        ),
        actor=REPORT_ACTOR.id,
    )
    cert = x509.Certificate.load(issued.certificate_der)
    chain = tuple(x509.Certificate.load(c) for c in ca.chain(issued.ca_id))
    return ReportSigner(KeystoreCmsSigner(keystore, REPORT_ACTOR, key.id, cert), chain)


_lock = threading.Lock()


def ensure_report_signer(
    keystore: KeyStore, ca: CertificateAuthority, settings: Settings
) -> ReportSigner:
    """The report-signing key and certificate, made when there is none (module docstring)."""
    with _lock:
        return _find(keystore, ca, settings) or _make(keystore, ca, settings)
