"""The signer registry: a key-store key bound to a certificate and its chain.

A signer is made once (``create``) from a signing key of the key store and either a
certificate the service's CA issues now for that key (``IssueSpec``) or an imported
certificate whose public key is the key's primary version. Afterwards callers sign
through it by id: raw signatures (GM/T 0029 SignData, ``sign``), CMS SignedData
(SignMessage, ``sign_cms``), or a ``KeystoreCmsSigner`` for other formats
(``cms_signer``: seals, PDF, OFD).

Authorisation of use is the caller's: routes check a ``signer`` grant on the signer id,
domain services their own rules. The registry then lends the signer's key to the
calling actor (a key grant for that key only), so the key store still applies its
states and purposes and audits every signature under the caller's id. Binding a key
needs the right to use it in the key store (``key_admin``, or its owner); having the
service's CA certify it needs ``ca_operator`` as well. Only ``sign`` and ``seal``
purpose keys can be bound: CA, TSA and audit keys stay with their services.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, TypeVar

from asn1crypto import x509

from ca.certs import load_certificate, load_certificates, name_text, verify_certificate
from ca.issue import IssueRequest, IssueResult
from ca.signer_store import ACTIVE, DISABLED, STATUSES, SignerRecord, SignerStore
from keystore.model import Actor, Algorithm, KeyState, Purpose, SignInput, SignResult
from keystore.service import KeyStore
from keystore.signer import KeystoreCmsSigner
from trust.audit.attempts import record_refusal
from trust.auth import AuditSink
from trust.clock import Clock
from trust.cms import GMT0010, RFC5652, CmsProfile, timestamp_token_attribute
from trust.cms.algorithms import digest
from trust.cms.build import SignedDataTemplate
from trust.errors import (
    BadRequest,
    Forbidden,
    InvalidSignature,
    KeyNotActive,
    KeyPurposeMismatch,
    SignerCertificateMismatch,
    SignerDisabled,
    TsaUnitUnavailable,
    UnsupportedAlgorithm,
)
from trust.keys import KeyAlgorithm, SignatureScheme

ID_PREFIX = "sgn_"
ISSUED = "issued"
IMPORTED = "imported"
PROFILES: Mapping[str, CmsProfile] = {p.name: p for p in (GMT0010, RFC5652)}
_BINDABLE = frozenset({Purpose.SIGN, Purpose.SEAL})
_UNBINDABLE_STATES = frozenset({KeyState.COMPROMISED, KeyState.DESTROYED, KeyState.DEACTIVATED})

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")


class Timestamper(Protocol):
    """Signature timestamp tokens (the service's TSA)."""

    def check(self) -> None:
        """Raise ``TsaUnitUnavailable`` (no TSA unit) or ``TimestampUnavailable`` (its
        clock is not synchronised) when no token can be made. Called
        before signing: a signature made and then refused its timestamp would already be
        recorded by the key store."""

    def __call__(self, hash_algorithm: str, digest: bytes, /) -> bytes:
        """DER TimeStampToken over ``digest``, the signature value's ``hash_algorithm``
        digest."""


class CertificateIssuer(Protocol):
    """The one thing the registry needs from the CA."""

    def issue(self, request: IssueRequest, *, actor: str = ...) -> IssueResult: ...


@dataclass(frozen=True)
class IssueSpec:
    """Have the service's CA ``ca_id`` certify the key under ``profile``."""

    ca_id: str
    profile: str
    subject: Mapping[str, str]
    san: Sequence[str] | None = None
    validity_days: int | None = None


@dataclass(frozen=True)
class CreateSignerRequest:
    """Exactly one of ``issue`` and ``certificate`` (PEM or DER; ``chain`` optional,
    PEM bundle or one DER certificate, issuer first)."""

    label: str
    key_id: str
    issue: IssueSpec | None = None
    certificate: bytes | None = None
    chain: bytes | None = None


@dataclass(frozen=True)
class SignerInfo:
    id: str
    label: str
    key_id: str
    algorithm: str  # the key store's name: SM2, ECDSA-P256, RSA-2048, ...
    source: str  # issued | imported
    certificate_der: bytes
    chain_der: tuple[bytes, ...]  # issuer first
    certificate_serial: str | None  # when issued by this service's CA
    ca_id: str | None
    owner: str
    status: str  # active | disabled
    created_at: datetime
    subject: str
    not_after: datetime


@dataclass(frozen=True)
class CmsOptions:
    detached: bool = False
    include_chain: bool = False
    timestamp: bool = False
    profile: str | None = None  # gmt0010 (default for SM2) or rfc5652 (the default otherwise)


def new_signer_id() -> str:
    return ID_PREFIX + secrets.token_hex(12)


def _info(record: SignerRecord) -> SignerInfo:
    cert = x509.Certificate.load(record.certificate)
    return SignerInfo(
        id=record.id,
        label=record.label,
        key_id=record.key_id,
        algorithm=record.algorithm,
        source=record.source,
        certificate_der=record.certificate,
        chain_der=record.chain,
        certificate_serial=record.certificate_serial,
        ca_id=record.ca_id,
        owner=record.owner,
        status=record.status,
        created_at=record.created_at,
        subject=name_text(cert.subject),
        not_after=cert.not_valid_after,
    )


def cms_profile(name: str | None, algorithm: KeyAlgorithm) -> CmsProfile:
    """The named profile; GM/T 0010 by default for SM2, RFC 5652 otherwise."""
    if name is None:
        return GMT0010 if algorithm is KeyAlgorithm.SM2 else RFC5652
    profile = PROFILES.get(name)
    if profile is None:
        raise BadRequest(f"unknown CMS profile {name!r}; use one of {', '.join(PROFILES)}")
    if profile is GMT0010 and algorithm is not KeyAlgorithm.SM2:
        raise UnsupportedAlgorithm("the gmt0010 profile is for SM2 signers")
    return profile


class SignerRegistry:
    def __init__(
        self,
        store: SignerStore,
        keystore: KeyStore,
        issuer: CertificateIssuer,
        clock: Clock,
        audit: AuditSink,
    ) -> None:
        self._store = store
        self._keystore = keystore
        self._issuer = issuer
        self._clock = clock
        self._audit = audit
        self._certified: dict[str, int] = {}
        self._templates: dict[tuple[str, str, bool, bool], SignedDataTemplate] = {}

    # --- registry ------------------------------------------------------------------

    def create(self, request: CreateSignerRequest, actor: Actor) -> SignerInfo:
        info = self._audited(
            actor, "signer.create", request.key_id, lambda: self._create(request, actor)
        )
        self._audit.append(
            actor.id,
            "signer.create",
            target=info.id,
            details={
                "key_id": info.key_id,
                "source": info.source,
                "certificate_serial": info.certificate_serial,
                "subject": info.subject,
            },
        )
        return info

    def _audited(self, actor: Actor, action: str, target: str, run: Callable[[], _T]) -> _T:
        """``run()``; a refusal is recorded (outcome failure, with its code) and re-raised,
        so the log shows every attempt, not only what succeeded. Callers record success."""
        return record_refusal(self._audit, actor.id, action, target, run)

    def _create(self, request: CreateSignerRequest, actor: Actor) -> SignerInfo:
        if (request.issue is None) == (request.certificate is None):
            raise BadRequest("give exactly one of issue and certificate")
        if request.issue is not None and request.chain is not None:
            raise BadRequest("an issued signer's chain comes from the CA; give no chain")
        key = self._keystore.get(request.key_id, actor)  # Forbidden unless the actor may use it
        if key.purpose not in _BINDABLE:
            raise KeyPurposeMismatch(
                f"key {key.id} has purpose {key.purpose}; a signer needs a sign or seal key"
            )
        if key.algorithm.asymmetric is None:
            raise UnsupportedAlgorithm(f"{key.algorithm} keys cannot sign")
        if key.state in _UNBINDABLE_STATES:
            raise KeyNotActive(f"key {key.id} is {key.state}")
        spki = self._keystore.public_key(key.id).spki_der
        record = SignerRecord(
            id=new_signer_id(),
            label=request.label,
            key_id=key.id,
            algorithm=key.algorithm.value,
            source=ISSUED,
            certificate=b"",
            chain=(),
            certificate_serial=None,
            ca_id=None,
            owner=actor.id,
            status=ACTIVE,
            created_at=self._clock.now(),
        )
        if request.issue is not None:
            if "ca_operator" not in actor.roles:
                raise Forbidden("having the service's CA certify a signer key needs ca_operator")
            spec = request.issue
            issued = self._issuer.issue(
                IssueRequest(
                    spec.ca_id,
                    spec.profile,
                    public_key=spki,
                    subject=spec.subject,
                    san=spec.san,
                    validity_days=spec.validity_days,
                ),
                actor=actor.id,
            )
            chain = tuple(c.dump() for c in load_certificates(issued.chain_pem.encode()))
            record = replace(
                record,
                certificate=issued.certificate_der,
                chain=chain,
                certificate_serial=issued.serial_hex,
                ca_id=issued.ca_id,
            )
        else:
            assert request.certificate is not None
            cert, chain = _imported(request.certificate, request.chain, spki)
            record = replace(record, source=IMPORTED, certificate=cert, chain=chain)
        self._store.insert(record)
        return _info(record)

    def get(self, signer_id: str) -> SignerInfo:
        return _info(self._store.get(signer_id))

    def list_signers(self) -> list[SignerInfo]:
        return [_info(r) for r in self._store.list_all()]

    def set_status(self, signer_id: str, status: str, actor: Actor) -> SignerInfo:
        action = "signer.enable" if status == ACTIVE else "signer.disable"

        def run() -> tuple[SignerRecord, SignerRecord]:
            if status not in STATUSES:
                raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
            return self._store.get(signer_id), self._store.set_status(signer_id, status)

        before, record = self._audited(actor, action, signer_id, run)
        self._audit.append(
            actor.id, action, target=signer_id, details={"from": before.status, "to": status}
        )
        return _info(record)

    # --- use -----------------------------------------------------------------------

    def cms_signer(self, signer_id: str, actor: Actor) -> KeystoreCmsSigner:
        """A ``CmsSigner`` for the signer, signing through the key store as ``actor``.
        ``SignerDisabled`` for a disabled signer; the key store's own codes for the key
        (suspended, expired, ...) come when signing; ``InvalidKey`` if the key was
        rotated away from the certified version."""
        record = self._active(signer_id)
        return KeystoreCmsSigner(
            self._keystore,
            _lent(actor, record.key_id),
            record.key_id,
            x509.Certificate.load(record.certificate),
        )

    def chain(self, signer_id: str) -> list[x509.Certificate]:
        """The signer's issuers, issuer first."""
        return [x509.Certificate.load(c) for c in self._store.get(signer_id).chain]

    def sign(
        self,
        signer_id: str,
        items: Sequence[SignInput],
        actor: Actor,
        *,
        scheme: SignatureScheme | None = None,
    ) -> list[SignResult]:
        """Raw signatures by the signer's certified key version (all or nothing)."""

        def run() -> list[SignResult]:
            return self._sign(self._active(signer_id), items, actor, scheme)

        results = self._audited(actor, "signer.sign", signer_id, run)
        self._audit.append(
            actor.id, "signer.sign", target=signer_id, details={"count": len(results)}
        )
        return results

    def sign_cms(
        self,
        signer_id: str,
        contents: Sequence[bytes],
        options: CmsOptions,
        actor: Actor,
        *,
        timestamper: Timestamper | None = None,
    ) -> list[bytes]:
        """One DER ContentInfo (SignedData) per content: signed attributes contentType,
        messageDigest, signingTime (now) and signingCertificateV2; the signer's chain when
        ``include_chain``; with ``timestamp`` a signature timestamp token (unsigned
        id-aa-timeStampToken over the signature value) from ``timestamper``. The
        contents are signed with one key store call (one audit group)."""
        out, profile = self._audited(
            actor,
            "signer.cms",
            signer_id,
            lambda: self._sign_cms(signer_id, contents, options, actor, timestamper),
        )
        self._audit.append(
            actor.id,
            "signer.cms",
            target=signer_id,
            details={
                "count": len(out),
                "profile": profile.name,
                "detached": options.detached,
                "timestamp": options.timestamp,
            },
        )
        return out

    def _sign_cms(
        self,
        signer_id: str,
        contents: Sequence[bytes],
        options: CmsOptions,
        actor: Actor,
        timestamper: Timestamper | None,
    ) -> tuple[list[bytes], CmsProfile]:
        if options.timestamp:
            if timestamper is None:
                raise TsaUnitUnavailable("no timestamp authority is configured")
            timestamper.check()
        record = self._active(signer_id)
        algorithm = Algorithm(record.algorithm).asymmetric
        assert algorithm is not None
        profile = cms_profile(options.profile, algorithm)
        template = self._template(record, algorithm, profile, options)
        now = self._clock.now()
        signed = [template.signed_attributes(c, now) for c in contents]
        # CMS names RSA signatures sha256WithRSAEncryption: PKCS#1 v1.5, whatever the key
        # store's default scheme.
        scheme = SignatureScheme.RSA_PKCS1V15 if algorithm.value.startswith("rsa") else None
        results = self._sign(record, [SignInput(a) for a in signed], actor, scheme)
        out = []
        for content, attributes, result in zip(contents, signed, results, strict=True):
            unsigned = []
            if options.timestamp:
                assert timestamper is not None
                name = template.digest_name
                token = timestamper(name, digest(name, result.signature))
                unsigned.append(timestamp_token_attribute(token))
            out.append(template.assemble(content, attributes, result.signature, unsigned))
        return out, profile

    def _active(self, signer_id: str) -> SignerRecord:
        # Read at every use, so a disable holds at once in every worker.
        record = self._store.get(signer_id)
        if record.status == DISABLED:
            raise SignerDisabled(f"signer {signer_id} is disabled")
        return record

    def _sign(
        self,
        record: SignerRecord,
        items: Sequence[SignInput],
        actor: Actor,
        scheme: SignatureScheme | None,
    ) -> list[SignResult]:
        certified = self._certified_version(record)
        results = self._keystore.sign_many(
            record.key_id, items, _lent(actor, record.key_id), scheme=scheme
        )
        if any(r.version != certified for r in results):
            self._certified.pop(record.id, None)
            raise KeyNotActive(
                f"key {record.key_id} was rotated; its certificate certifies an older version"
            )
        return results

    def _certified_version(self, record: SignerRecord) -> int:
        """The key version the certificate certifies. Cached: after a rotation the key
        store signs with another version, which ``_sign`` refuses and uncaches."""
        cached = self._certified.get(record.id)
        if cached is not None:
            return cached
        public = self._keystore.public_key(record.key_id)
        cert = x509.Certificate.load(record.certificate)
        if cert["tbs_certificate"]["subject_public_key_info"].dump() != public.spki_der:
            raise KeyNotActive(
                f"key {record.key_id} was rotated; its certificate certifies an older version"
            )
        _bounded(self._certified)[record.id] = public.version
        return public.version

    def _template(
        self,
        record: SignerRecord,
        algorithm: KeyAlgorithm,
        profile: CmsProfile,
        options: CmsOptions,
    ) -> SignedDataTemplate:
        # A signer's certificate and chain never change, so neither do its templates.
        key = (record.id, profile.name, options.detached, options.include_chain)
        template = self._templates.get(key)
        if template is None:
            chain = [x509.Certificate.load(c) for c in record.chain]
            template = SignedDataTemplate(
                x509.Certificate.load(record.certificate),
                algorithm,
                profile=profile,
                detached=options.detached,
                extra_certificates=chain if options.include_chain else (),
            )
            _bounded(self._templates)[key] = template
        return template


_CACHE_LIMIT = 4096


def _bounded(cache: dict[_K, _V]) -> dict[_K, _V]:
    """``cache``, emptied first when full (signers are few; this only bounds memory)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    return cache


def _lent(actor: Actor, key_id: str) -> Actor:
    """``actor`` with the signer's key granted: the caller was authorised for the signer."""
    return replace(actor, key_grants=actor.key_grants | {key_id})


def _imported(
    certificate: bytes, chain: bytes | None, spki: bytes
) -> tuple[bytes, tuple[bytes, ...]]:
    """The certificate and chain DER, after checking the certificate is for ``spki`` and
    each chain certificate signed the one before it."""
    cert = load_certificate(certificate)
    if cert["tbs_certificate"]["subject_public_key_info"].dump() != spki:
        raise SignerCertificateMismatch(
            "the certificate's public key is not the key's primary version"
        )
    issuers = load_certificates(chain) if chain else []
    child = cert
    for issuer in issuers:
        try:
            verify_certificate(child, issuer)
        except InvalidSignature as exc:
            raise SignerCertificateMismatch(f"the chain does not link: {exc.detail}") from None
        child = issuer
    return cert.dump(), tuple(c.dump() for c in issuers)
