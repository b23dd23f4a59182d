"""OCSP (RFC 6960) responses: good / revoked / unknown for each CertID, the request's
nonce echoed, signed by the CA's delegated responder certificate (profile ``ocsp``:
EKU OCSPSigning, id-pkix-ocsp-nocheck).

Signed responses to nonce-less requests are cached in process for a short TTL,
keyed by the request's CertIDs *and* the current status of each serial, so a
revocation is never hidden by that cache: the next request misses it. On top of it,
``cached`` answers a repeated nonce-less request without reading status for
``status_ttl`` seconds; ``status_changed`` (called on every revocation and release, and
broadcast to other workers through coordination by the CA service) drops those answers,
so the TTL only bounds staleness when a broadcast is lost (or a revocation came from a
process without shared coordination).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import core, ocsp, x509

from ca.certs import key_identifier
from ca.crl import RevocationReason
from ca.signer import CaKeySigner, signature_algorithm
from ca.store import ISSUED, AuthorityRecord, StatusReader
from trust.clock import Clock
from trust.sm3 import sm3

_HASHES: dict[str, Callable[[bytes], bytes]] = {
    # SHA-1 only identifies the issuer here (RFC 6960 CertID), where it is still the default.
    "sha1": lambda d: hashlib.sha1(d, usedforsecurity=False).digest(),
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "sha384": lambda d: hashlib.sha384(d).digest(),
    "sha512": lambda d: hashlib.sha512(d).digest(),
    "sm3": sm3,
}
_CACHE_ENTRIES = 10_000
# The CA keys and responders are re-read this often (seconds): a new CA, a rollover or a
# responder replaced by another worker is seen within it. Status is read on every request.
_KEYS_REFRESH = 5.0
_RESPONDER_REFRESH = timedelta(seconds=60)


@dataclass(frozen=True)
class Responder:
    """A CA as an OCSP responder: its record and certificate, the delegated signer and
    its certificate."""

    ca: AuthorityRecord
    ca_certificate: x509.Certificate
    signer: CaKeySigner
    signer_certificate: x509.Certificate


def _cert_id_matches(cert_id: ocsp.CertId, ca_cert: x509.Certificate) -> bool:
    hash_fn = _HASHES.get(cert_id["hash_algorithm"]["algorithm"].native)
    if hash_fn is None:
        return False
    key_bits = ca_cert.public_key["public_key"].contents[1:]  # BIT STRING minus unused-bits
    return (
        hash_fn(ca_cert.subject.dump()) == cert_id["issuer_name_hash"].native
        and hash_fn(key_bits) == cert_id["issuer_key_hash"].native
    )


def _status_response(code: str) -> bytes:
    return ocsp.OCSPResponse({"response_status": code}).dump()


class OcspResponder:
    """Answers DER OCSP requests for every CA key in the store (retired generations too:
    their certificates are answered by a responder that key certified); ``responder_for``
    gives the delegated signer of a CA key generation (made on first use)."""

    def __init__(
        self,
        store: StatusReader,
        responder_for: Callable[[str, int], Responder],
        clock: Clock,
        *,
        validity: timedelta = timedelta(hours=1),
        cache_ttl: float = 300.0,
        status_ttl: float = 0.0,
    ) -> None:
        self._store = store
        self._responder_for = responder_for
        self._parsed: dict[bytes, x509.Certificate] = {}
        self._clock = clock
        self._validity = validity
        self._ttl = timedelta(seconds=cache_ttl)
        self._cache: OrderedDict[tuple[object, ...], tuple[datetime, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._keys: list[tuple[str, int, x509.Certificate]] = []
        self._keys_read = -_KEYS_REFRESH
        self._responders: dict[tuple[str, int], tuple[datetime, Responder]] = {}
        # Parsed nonce-less requests by their DER (clients repeat the same request).
        self._requests: OrderedDict[bytes, list[ocsp.CertId]] = OrderedDict()
        # Answers to nonce-less requests served without reading status, for status_ttl
        # seconds or until status_changed() (this process, or a broadcast from another).
        self._status_ttl = min(status_ttl, cache_ttl)
        self._answers: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self._epoch = 0  # bumped by status_changed(): an answer read before is not kept

    def cached(self, request_der: bytes) -> bytes | None:
        """The answer to a nonce-less request made within the last ``status_ttl`` seconds
        with no status change since, or None. No I/O: safe on an event loop."""
        with self._lock:
            hit = self._answers.get(request_der)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def status_changed(self) -> None:
        """A certificate's status changed: answers kept by ``cached`` are dropped."""
        with self._lock:
            self._epoch += 1
            self._answers.clear()

    def respond(self, request_der: bytes) -> bytes:
        """A DER OCSPResponse; malformed input gives ``malformedRequest``, a request for a
        CA this service does not run gives ``unauthorized`` (RFC 6960 §2.3)."""
        with self._lock:
            known = self._requests.get(request_der)
        if known is not None:
            cert_ids, nonce = known, None
        else:
            try:
                request = ocsp.OCSPRequest.load(request_der, strict=True)
                tbs = request["tbs_request"]
                cert_ids = [r["req_cert"] for r in tbs["request_list"]]
                _ = tbs.native  # parses every nested field now, not halfway through the answer
                nonce = request.nonce_value
            except Exception:  # asn1crypto raises assorted built-ins on bad DER
                return _status_response("malformed_request")
            if not cert_ids:
                return _status_response("malformed_request")
        issuer = self._issuer_of(cert_ids[0])
        if issuer is None:
            return _status_response("unauthorized")
        if known is None and nonce is None:
            with self._lock:
                self._requests[request_der] = cert_ids
                while len(self._requests) > _CACHE_ENTRIES:
                    self._requests.popitem(last=False)
        responder = self._responder(*issuer)

        epoch = self._epoch
        statuses = [self._status(responder, cid) for cid in cert_ids]
        key = (responder.ca.id, responder.signer.key_id, *(c.dump() for c in cert_ids), *statuses)
        now = self._clock.now().replace(microsecond=0)
        if nonce is None:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                self._keep_answer(request_der, cached[1], epoch)
                return cached[1]
        response = self._sign(responder, cert_ids, statuses, nonce, now)
        if nonce is None and self._ttl:
            with self._lock:
                self._cache[key] = (now + self._ttl, response)
                while len(self._cache) > _CACHE_ENTRIES:
                    self._cache.popitem(last=False)
            self._keep_answer(request_der, response, epoch)
        return response

    def _keep_answer(self, request_der: bytes, response: bytes, epoch: int) -> None:
        if not self._status_ttl:
            return
        with self._lock:
            if epoch != self._epoch:  # a status changed while this one was read
                return
            self._answers[request_der] = (time.monotonic() + self._status_ttl, response)
            while len(self._answers) > _CACHE_ENTRIES:
                self._answers.popitem(last=False)

    def _issuer_of(self, cert_id: ocsp.CertId) -> tuple[str, int] | None:
        for attempt in (0, 1):
            for ca_id, generation, cert in self._signing_keys(force=attempt == 1):
                if _cert_id_matches(cert_id, cert):
                    return ca_id, generation
        return None

    def _signing_keys(self, *, force: bool) -> list[tuple[str, int, x509.Certificate]]:
        now = time.monotonic()
        # An unknown issuer re-reads at once: it may be a CA made a moment ago (this costs
        # what every request cost before the keys were kept).
        if force or now - self._keys_read > _KEYS_REFRESH:
            keys = []
            for ca in self._store.signing_keys():
                assert ca.certificate is not None
                cert = self._parsed.get(ca.certificate)
                if cert is None:
                    cert = self._parsed[ca.certificate] = x509.Certificate.load(ca.certificate)
                keys.append((ca.id, ca.generation, cert))
            self._keys, self._keys_read = keys, now
        return self._keys

    def _responder(self, ca_id: str, generation: int) -> Responder:
        now = self._clock.now()
        cached = self._responders.get((ca_id, generation))
        if cached is not None and cached[0] > now:
            return cached[1]
        responder = self._responder_for(ca_id, generation)
        self._responders[(ca_id, generation)] = (now + _RESPONDER_REFRESH, responder)
        return responder

    def _status(self, responder: Responder, cert_id: ocsp.CertId) -> tuple[object, ...]:
        if not _cert_id_matches(cert_id, responder.ca_certificate):
            return ("unknown",)
        record = self._store.find(format(cert_id["serial_number"].native, "x"))
        # A reserved serial has no certificate the store can vouch for: unknown, not good.
        if (
            record is None
            or record.ca_id != responder.ca.id
            or record.ca_generation != responder.ca.generation
            or record.state != ISSUED
        ):
            return ("unknown",)
        if record.revoked_at is not None:
            return ("revoked", record.revoked_at, record.revocation_reason)
        return ("good",)

    def _sign(
        self,
        responder: Responder,
        cert_ids: Sequence[ocsp.CertId],
        statuses: Sequence[tuple[object, ...]],
        nonce: bytes | None,
        now: datetime,
    ) -> bytes:
        singles = []
        for cert_id, status in zip(cert_ids, statuses, strict=True):
            if status[0] == "revoked":
                info: dict[str, object] = {"revocation_time": status[1]}
                if status[2] != RevocationReason.UNSPECIFIED:
                    info["revocation_reason"] = status[2]
                cert_status = ocsp.CertStatus(name="revoked", value=info)
            else:
                cert_status = ocsp.CertStatus(name=str(status[0]), value=core.Null())
            singles.append(
                {
                    "cert_id": cert_id,
                    "cert_status": cert_status,
                    "this_update": now,
                    "next_update": now + self._validity,
                }
            )
        data: dict[str, object] = {
            "responder_id": {"by_key": key_identifier(responder.signer_certificate.public_key)},
            "produced_at": now,
            "responses": singles,
        }
        if nonce is not None:
            data["response_extensions"] = [
                {"extn_id": "nonce", "critical": False, "extn_value": nonce}
            ]
        tbs = ocsp.ResponseData(data)
        algorithm = signature_algorithm(responder.signer.algorithm)
        signature = responder.signer.sign(tbs.dump())
        basic = ocsp.BasicOCSPResponse(
            {
                "tbs_response_data": tbs,
                "signature_algorithm": algorithm,
                "signature": signature,
                "certs": [responder.signer_certificate],
            }
        )
        return ocsp.OCSPResponse(
            {
                "response_status": "successful",
                "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
            }
        ).dump()
