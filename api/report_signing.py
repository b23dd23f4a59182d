"""The service's report-signing key: wiring of the key store and the CA for signed
validation reports (``trust.validation.signed_report``), made on first use.

The key is an SM2 ``sign`` key of the key store, owned by the principal
``verify-service`` and labelled ``verification-reports``; its certificate comes from
the default SM2 issuing CA under the ``report_signer`` profile (signing key usages, no
extended key usage). Nothing new is stored: the key is found again by owner and label
(the newest), its certificate by subject and profile among the CA's good certificates,
matched on the public key. A store made before that profile existed holds the key with a
``seal_maker`` certificate only: the same key is certified again under ``report_signer``
on first use, so signed reports go on with the key they always had. Two workers making
it at once each make one; both are valid and later lookups take the newest. Every
signature goes through the key store, so each signed report is a ``key.sign`` audit
record; the key and its certificate are audited where they are made (key store, CA).
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
REPORT_PROFILE = "report_signer"


@dataclass(frozen=True)
class ReportSigner:
    signer: KeystoreCmsSigner
    chain: tuple[x509.Certificate, ...]  # issuer first, up to the root


def _common_name(settings: Settings) -> str:
    return f"{settings.ca_default_organization} Verification Reports"


def _report_key(keystore: KeyStore) -> str | None:
    """The newest active report key's id."""
    keys = [
        k
        for k in keystore.list_keys(REPORT_ACTOR)
        if k.owner == REPORT_ACTOR.id
        and k.label == REPORT_KEY_LABEL
        and k.purpose is Purpose.SIGN
        and k.state is KeyState.ACTIVE
    ]
    return keys[-1].id if keys else None


def _certified(
    ca: CertificateAuthority, settings: Settings, spki: bytes
) -> tuple[x509.Certificate, str] | None:
    """The newest good ``report_signer`` certificate for ``spki``, and its CA's id."""
    certificates = ca.list_certificates(
        subject=_common_name(settings), status="good", profile=REPORT_PROFILE
    )
    for info in reversed(certificates):
        if info.certificate_pem is None:
            continue
        cert = load_certificates(info.certificate_pem.encode())[0]
        if cert.public_key.dump() == spki:
            return cert, info.ca_id
    return None


def _certify(
    ca: CertificateAuthority, settings: Settings, issuing_id: str, spki: bytes
) -> tuple[x509.Certificate, str]:
    issued = ca.issue(
        IssueRequest(
            issuing_id,
            REPORT_PROFILE,
            public_key=spki,
            subject={
                "country_name": "CN",
                "organization_name": settings.ca_default_organization,
                "common_name": _common_name(settings),
            },
        ),
        actor=REPORT_ACTOR.id,
    )
    return x509.Certificate.load(issued.certificate_der), issued.ca_id


def _issuing_ca(ca: CertificateAuthority, settings: Settings) -> str:
    issuing = [c for c in ca.list_cas() if c.name == settings.ca_default_sm2_issuing_name]
    if not issuing:
        raise CaNotFound(
            f"no CA {settings.ca_default_sm2_issuing_name!r} to certify the report-signing "
            "key: run trustctl init"
        )
    return issuing[0].id


_lock = threading.Lock()


def ensure_report_signer(
    keystore: KeyStore, ca: CertificateAuthority, settings: Settings
) -> ReportSigner:
    """The report-signing key and certificate, made or certified when missing (module
    docstring)."""
    with _lock:
        key_id = _report_key(keystore)
        if key_id is None:
            _issuing_ca(ca, settings)  # no key made for nothing before `trustctl init`
            request = GenerateRequest(REPORT_KEY_LABEL, StoredAlgorithm.SM2, Purpose.SIGN)
            key_id = keystore.generate(request, REPORT_ACTOR).id
        spki = keystore.public_key(key_id).spki_der
        found = _certified(ca, settings, spki) or _certify(
            ca, settings, _issuing_ca(ca, settings), spki
        )
        cert, ca_id = found
        chain = tuple(x509.Certificate.load(c) for c in ca.chain(ca_id))
        return ReportSigner(KeystoreCmsSigner(keystore, REPORT_ACTOR, key_id, cert), chain)
