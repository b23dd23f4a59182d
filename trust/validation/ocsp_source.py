"""OCSP responses from in-process responders, as revocation evidence.

Nothing is fetched over a network (``trust.validation.path``): an ``OcspSource`` is a
responder the caller runs itself, such as the service's own CAs (``api.routers.verify``).
``fetch_ocsp`` asks it about each certificate a path may run through whose issuer is
among the certificates at hand; the answers join the supplied OCSP responses, and path
validation checks them like any other (signature, responder authorisation, freshness).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from asn1crypto import ocsp, x509


class OcspSource(Protocol):
    def ocsp(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        """A DER OCSPResponse about ``certificate``, or None when this source answers for
        no such issuer."""


def ocsp_request(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A nonce-less DER OCSPRequest for ``certificate`` (CertID with SHA-256, RFC 6960)."""
    key_bits = issuer.public_key["public_key"].contents[1:]  # BIT STRING minus unused bits
    cert_id = ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
            "issuer_key_hash": hashlib.sha256(key_bits).digest(),
            "serial_number": certificate.serial_number,
        }
    )
    return ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()


def fetch_ocsp(
    source: OcspSource,
    certificates: Iterable[x509.Certificate],
    issuers: Sequence[x509.Certificate],
) -> tuple[bytes, ...]:
    """``source``'s answers about ``certificates`` (self-signed ones skipped), each asked
    of the first issuer by name among ``issuers`` that the source answers for."""
    found: dict[bytes, None] = {}
    for cert in certificates:
        if cert.self_signed != "no":
            continue
        issuer_name = cert.issuer.dump()
        for issuer in issuers:
            if issuer is cert or issuer.subject.dump() != issuer_name:
                continue
            response = source.ocsp(cert, issuer)
            if response is not None:
                found[response] = None
                break
    return tuple(found)
