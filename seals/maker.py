"""The seal maker (制章者): a key-store SM2 key (purpose ``seal``) certified by the
service's CA under the ``seal_maker`` profile, made on first use.

First use rather than ``trustctl init``: a deployment that never makes seals gets no
maker key, and a maker whose certificate is about to expire (less than a tenth of its
validity left) is replaced on the next use without an operator step. Two processes
making the first maker at once both create a key; the store keeps the first one
written and the other key stays unused (its creation is audited like any other).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

from asn1crypto import x509

from ca.issue import IssueRequest
from ca.service import CertificateAuthority
from keystore.model import Actor, Algorithm, GenerateRequest, Purpose
from keystore.service import KeyStore
from keystore.signer import KeystoreSigner
from seals.store import MakerRecord, SealStore
from trust.clock import Clock
from trust.errors import CaUnusable

# One principal for every process (API workers, trustctl): it owns the maker key.
MAKER_ACTOR = Actor("seal-service", frozenset({"key_admin"}))
_NAME = "default"


@dataclass(frozen=True)
class MakerConfig:
    ca_name: str  # the CA that certifies the maker
    organization: str
    validity_days: int


class SealMaker:
    def __init__(
        self,
        store: SealStore,
        keystore: KeyStore,
        ca: CertificateAuthority,
        clock: Clock,
        config: MakerConfig,
    ) -> None:
        self._store = store
        self._keystore = keystore
        self._ca = ca
        self._clock = clock
        self._config = config
        self._lock = threading.Lock()
        self._current: tuple[MakerRecord, KeystoreSigner] | None = None

    def current(self, *, actor: str) -> tuple[MakerRecord, KeystoreSigner]:
        """The maker's certificate record and a signer over its key; made or replaced
        when there is none or it is near its end."""
        with self._lock:
            if self._current is not None and self._usable(self._current[0]):
                return self._current
            record = self._store.maker(_NAME)
            if record is None or not self._usable(record):
                record = self._store.put_maker(
                    _NAME, self._new(actor), self._clock.now(), replace=record is not None
                )
            self._current = (record, KeystoreSigner(self._keystore, MAKER_ACTOR, record.key_id))
            return self._current

    def _usable(self, record: MakerRecord) -> bool:
        margin = timedelta(days=self._config.validity_days) / 10
        return record.not_after - margin > self._clock.now()

    def _new(self, actor: str) -> MakerRecord:
        ca = next((c for c in self._ca.list_cas() if c.name == self._config.ca_name), None)
        if ca is None:
            raise CaUnusable(
                f"no CA named {self._config.ca_name!r} to certify the seal maker "
                "(run `trustctl init`, or set TRUST_SEAL_MAKER_CA)"
            )
        info = self._keystore.generate(
            GenerateRequest(label="seal maker", algorithm=Algorithm.SM2, purpose=Purpose.SEAL),
            MAKER_ACTOR,
        )
        public = self._keystore.public_key(info.id)
        issued = self._ca.issue(
            IssueRequest(
                ca_id=ca.id,
                profile="seal_maker",
                public_key=public.spki_der,
                subject={
                    "C": "CN",
                    "O": self._config.organization,
                    "CN": f"{self._config.organization} Seal Maker",
                },
                validity_days=self._config.validity_days,
            ),
            actor=actor,
        )
        cert = x509.Certificate.load(issued.certificate_der)
        return MakerRecord(info.id, issued.serial_hex, issued.certificate_der, cert.not_valid_after)
