"""Issuance: from a PKCS#10 request or a caller-supplied public key to a signed
certificate, under a profile's rules.

The order is Boulder's: check the request, draw a serial, persist the record
(state ``reserved``), and only then sign and store the DER. A crash or a signer
failure between the two leaves a reserved serial (never reused, shown as such),
never a signed certificate the store does not know.

Validity: a request longer than the profile maximum is refused
(``ProfileValidityTooLong``) so a caller's mistake is not silently changed; the
validity is then clipped to the issuer's notAfter (RFC 5280 path validation
would reject anything beyond it anyway).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import core, x509
from asn1crypto import keys as asn1_keys

from ca import der
from ca.certs import (
    AltName,
    build_name,
    certificate_pem,
    chain_pem,
    general_names,
    key_identifier,
    name_attributes,
    name_text,
    new_serial,
    parse_alt_name,
    parse_csr,
    public_key_info,
    serial_hex,
)
from ca.profiles import Profile, get_profile
from ca.signer import CaKeySource, signature_algorithm
from ca.store import RESERVED, AuthorityRecord, CertificateRecord, IssuanceStore
from trust.clock import Clock
from trust.errors import (
    BadRequest,
    CaUnusable,
    Conflict,
    ProfileKeyNotAllowed,
    ProfileSanInvalid,
    ProfileSubjectInvalid,
    ProfileValidityTooLong,
    ValidationFailed,
)
from trust.keys import PublicKey, public_key_fingerprint
from trust.settings import Settings

_SERIAL_ATTEMPTS = 3  # a 128-bit collision is not expected; retries cover a freak one
# Issuance reads its CA's record at most this often (seconds). A rollover in this process
# is seen at once (``forget``); one in another process within this time, meanwhile the
# previous key (still valid) issues, and each row records the key generation that signed.
_AUTHORITY_SECONDS = 1.0


@dataclass(frozen=True)
class CaUrls:
    """Where relying parties find CRLs, OCSP and issuer certificates."""

    base_url: str
    ocsp_url: str
    policy_oid: str = "2.5.29.32.0"

    @classmethod
    def from_settings(cls, settings: Settings) -> CaUrls:
        return cls(
            settings.effective_ca_base_url, settings.effective_ca_ocsp_url, settings.ca_policy_oid
        )

    # Generation 1 has the plain URLs (every certificate issued before a rollover names
    # them); later key generations name theirs, so each URL keeps meaning one key.
    def crl(self, ca_id: str, generation: int = 1) -> str:
        return f"{self.base_url}/crl/{ca_id}.crl" + _generation_query(generation)

    def ca_issuers(self, ca_id: str, generation: int = 1) -> str:
        return f"{self.base_url}/v1/cas/{ca_id}/certificate" + _generation_query(generation)


def _generation_query(generation: int) -> str:
    return "" if generation == 1 else f"?generation={generation}"


@dataclass(frozen=True)
class IssueRequest:
    """Exactly one of ``csr`` (PKCS#10, DER or PEM) and ``public_key`` (SPKI, DER or PEM,
    e.g. of a keystore-generated key). ``subject`` and ``san`` replace what the CSR asks."""

    ca_id: str
    profile: str
    csr: bytes | None = None
    public_key: bytes | None = None
    subject: Mapping[str, str] | None = None
    san: Sequence[str] | None = None
    validity_days: int | None = None
    replaces: str | None = None  # serial of the certificate this one renews or rekeys


@dataclass(frozen=True)
class IssueResult:
    serial_hex: str
    ca_id: str
    profile: str
    certificate_der: bytes
    certificate_pem: str
    chain_pem: str  # issuing CA first, root last
    not_before: datetime
    not_after: datetime


# GB 32100-2015 unified social credit code: 17 characters and a mod-31 check character.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def is_uscc(code: str) -> bool:
    if not re.fullmatch(f"[{_USCC_ALPHABET}]{{18}}", code):
        return False
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(code, _USCC_WEIGHTS, strict=False))
    return _USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def check_subject(profile: Profile, subject: Mapping[str, str]) -> None:
    missing = profile.required_subject - subject.keys()
    if missing:
        raise ProfileSubjectInvalid(
            f"profile {profile.name} requires subject attributes: {', '.join(sorted(missing))}"
        )
    extra = subject.keys() - profile.allowed_subject
    if extra:
        raise ProfileSubjectInvalid(
            f"profile {profile.name} does not allow subject attributes: {', '.join(sorted(extra))}"
        )
    if profile.uscc_subject and not is_uscc(subject.get("organization_identifier", "")):
        raise ProfileSubjectInvalid(
            "organization_identifier must be an 18-character unified social credit code"
        )


def check_alt_names(profile: Profile, names: Sequence[AltName]) -> None:
    bad = {n.kind for n in names} - profile.san_allowed
    if bad:
        raise ProfileSanInvalid(
            f"profile {profile.name} does not allow {', '.join(sorted(bad))} alternative names"
        )
    if profile.san_required and not names:
        raise ProfileSanInvalid(f"profile {profile.name} requires a subject alternative name")


@dataclass(frozen=True)
class _IssuerInfo:
    """What issuance needs of an issuing certificate, parsed once per certificate."""

    subject_der: bytes
    ski: bytes
    not_before: datetime
    not_after: datetime


class Issuer:
    """Makes certificates. Sees only the issuance part of the store."""

    def __init__(self, store: IssuanceStore, keys: CaKeySource, clock: Clock, urls: CaUrls) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self._urls = urls
        # Keyed by immutable values (certificate DER; CA id, issuer key, profile version),
        # so entries never go stale; one per CA certificate and profile.
        self._issuers: dict[bytes, _IssuerInfo] = {}
        self._chains: dict[bytes, str] = {}  # chain PEM by the CA certificate
        self._fixed_extensions: dict[
            tuple[str, bytes, str, int, bool], tuple[list[bytes], bytes, list[bytes]]
        ] = {}
        self._authorities: dict[str, tuple[float, AuthorityRecord]] = {}

    def authority(self, ca_id: str) -> AuthorityRecord:
        """The CA's record as issuance uses it: read at most every ``_AUTHORITY_SECONDS``
        once the CA has a certificate."""
        now = time.monotonic()
        kept = self._authorities.get(ca_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        ca = self._store.get_authority(ca_id)
        if ca.certificate is not None:
            self._authorities[ca_id] = (now + _AUTHORITY_SECONDS, ca)
        return ca

    def forget(self, ca_id: str) -> None:
        """The CA's record changed (a rollover): the next issuance reads it again."""
        self._authorities.pop(ca_id, None)

    def issue(
        self,
        request: IssueRequest,
        *,
        escrow_key_id: str | None = None,
        pair_serial: str | None = None,
        complete: bool = True,
    ) -> IssueResult:
        """``escrow_key_id`` and ``pair_serial`` mark the encryption half of a dual pair;
        ``complete`` False leaves the row reserved for the caller to complete (``sign_new``)."""
        profile = get_profile(request.profile)
        if profile.is_ca:
            raise BadRequest("CA certificates are made by creating a CA, not by issue")
        ca = self.authority(request.ca_id)
        if (request.csr is None) == (request.public_key is None):
            raise BadRequest("give exactly one of a certificate request and a public key")
        subject: dict[str, str] = {}
        alt_names: tuple[AltName, ...] = ()
        public: PublicKey | None = None
        if request.csr is not None:
            parsed = parse_csr(request.csr)
            spki_der, subject, alt_names = parsed.spki_der, parsed.subject, parsed.alt_names
            public = parsed.public_key
        else:
            spki_der = request.public_key or b""
        if request.subject is not None:
            subject = dict(request.subject)
        if request.san is not None:
            alt_names = tuple(parse_alt_name(s) for s in request.san)
        validity = _requested_validity(profile, request.validity_days)
        return self.sign_new(
            ca=ca,
            subject=subject,
            spki_der=spki_der,
            profile=profile,
            validity=validity,
            alt_names=alt_names,
            replaces=request.replaces,
            escrow_key_id=escrow_key_id,
            pair_serial=pair_serial,
            public_key=public,
            complete=complete,
        )

    def sign_new(
        self,
        *,
        ca: AuthorityRecord,
        subject: Mapping[str, str],
        spki_der: bytes,
        profile: Profile,
        validity: timedelta,
        alt_names: Sequence[AltName] = (),
        replaces: str | None = None,
        self_signed: bool = False,
        escrow_key_id: str | None = None,
        pair_serial: str | None = None,
        public_key: PublicKey | None = None,
        include_chain: bool = True,
        complete: bool = True,
    ) -> IssueResult:
        """Check, reserve the serial, sign, store. ``self_signed`` makes a root
        certificate for ``ca`` with its own key (``ca`` has no certificate yet);
        ``include_chain`` False leaves the result's chain empty (link certificates, made
        before the key generation they name is stored). ``complete`` False signs but
        leaves the row reserved: the caller stores the DER with ``IssuanceStore.complete``,
        together with others that must be issued all or none (a dual pair)."""
        if public_key is None:
            public, spki = public_key_info(spki_der)
        else:  # ``spki_der`` is already in this service's form (``parse_csr``)
            public, spki = public_key, asn1_keys.PublicKeyInfo.load(spki_der)
        if public.algorithm not in profile.key_algorithms:
            raise ProfileKeyNotAllowed(
                f"profile {profile.name} does not allow {public.algorithm} keys"
            )
        name = build_name(subject)
        check_subject(profile, name_attributes(name))
        check_alt_names(profile, alt_names)

        now = self._clock.now().replace(microsecond=0)
        not_after = now + validity
        if self_signed:
            issuer_name, issuer_ski = name.dump(), key_identifier(spki)
            if spki.dump() != _signer_spki(self._keys, ca):
                raise BadRequest("a self-signed certificate must be for the CA's own key")
        else:
            issuer = self._issuer_of(ca)
            if issuer.not_after <= now or issuer.not_before > now:
                raise CaUnusable(f"CA {ca.id} certificate is not valid now")
            not_after = min(not_after, issuer.not_after)
            issuer_name, issuer_ski = issuer.subject_der, issuer.ski

        serial = self._reserve(
            ca,
            profile,
            name,
            public_key_fingerprint(public),
            now,
            not_after,
            replaces,
            escrow_key_id,
            pair_serial,
        )
        signer = self._keys.signer(ca.key_id)
        algorithm = signature_algorithm(signer.algorithm).dump()
        spki_der = spki.dump()
        tbs = der.sequence(
            der.explicit(0, der.integer(2)),  # v3
            der.integer(serial),
            algorithm,
            issuer_name,
            der.sequence(der.time(now), der.time(not_after)),
            name.dump(),
            spki_der,
            der.explicit(
                3,
                der.sequence(
                    *self._extensions(ca, profile, spki, issuer_ski, alt_names, self_signed)
                ),
            ),
        )
        # The serial is on disk: from here a failure leaves a reserved row, never a gap.
        certificate = der.sequence(tbs, algorithm, der.bit_string(signer.sign(tbs)))
        if complete:
            self._store.complete((serial_hex(serial), certificate))
        return IssueResult(
            serial_hex=serial_hex(serial),
            ca_id=ca.id,
            profile=profile.name,
            certificate_der=certificate,
            certificate_pem=certificate_pem(certificate),
            chain_pem=self._chain_of(ca) if include_chain and not self_signed else "",
            not_before=now,
            not_after=not_after,
        )

    def _issuer_of(self, ca: AuthorityRecord) -> _IssuerInfo:
        if ca.certificate is None:
            raise CaUnusable(f"CA {ca.id} has no certificate yet")
        info = self._issuers.get(ca.certificate)
        if info is None:
            cert = x509.Certificate.load(ca.certificate)
            info = _IssuerInfo(
                subject_der=cert.subject.dump(),
                ski=cert.key_identifier or key_identifier(cert.public_key),
                not_before=cert.not_valid_before,
                not_after=cert.not_valid_after,
            )
            self._issuers[ca.certificate] = info
        return info

    def _chain_of(self, ca: AuthorityRecord) -> str:
        assert ca.certificate is not None
        chain = self._chains.get(ca.certificate)
        if chain is None:
            chain = self._chains[ca.certificate] = chain_pem(self.chain(ca.id, ca.generation))
        return chain

    def chain(self, ca_id: str, generation: int | None = None) -> list[bytes]:
        """Certificates of ``ca_id``'s key ``generation`` (default: current) and of the
        parent keys that certified it, issuing CA first, root last."""
        result: list[bytes] = []
        current: str | None = ca_id
        while current is not None:
            ca = self._store.authority_generation(current, generation)
            if ca.certificate is None or ca.certificate_serial is None:
                raise CaUnusable(f"CA {ca.id} has no certificate")
            result.append(ca.certificate)
            current = ca.parent_id
            if current is not None:
                # The parent key generation that signed this CA certificate.
                generation = self._store.get(ca.certificate_serial).ca_generation
        return result

    def _reserve(
        self,
        ca: AuthorityRecord,
        profile: Profile,
        name: x509.Name,
        fingerprint: str,
        now: datetime,
        not_after: datetime,
        replaces: str | None,
        escrow_key_id: str | None,
        pair_serial: str | None,
    ) -> int:
        for _attempt in range(_SERIAL_ATTEMPTS):
            serial = new_serial()
            record = CertificateRecord(
                serial=serial_hex(serial),
                ca_id=ca.id,
                state=RESERVED,
                profile=profile.name,
                profile_version=profile.version,
                subject=name_text(name),
                spki_fingerprint=fingerprint,
                is_ca=profile.is_ca,
                not_before=now,
                not_after=not_after,
                der=None,
                replaces=replaces,
                created_at=now,
                revoked_at=None,
                revocation_reason=None,
                escrow_key_id=escrow_key_id,
                pair_serial=pair_serial,
                ca_generation=ca.generation,
            )
            try:
                self._store.reserve(record)
            except Conflict:
                continue
            return serial
        raise Conflict("could not draw an unused serial number")

    def _extensions(
        self,
        ca: AuthorityRecord,
        profile: Profile,
        spki: asn1_keys.PublicKeyInfo,
        issuer_ski: bytes,
        alt_names: Sequence[AltName],
        self_signed: bool,
    ) -> list[bytes]:
        """DER Extensions in a fixed order; all but SKI and SAN depend only on the CA, the
        issuer key and the profile, so they are encoded once."""
        key = (ca.id, issuer_ski, profile.name, profile.version, self_signed)
        fixed = self._fixed_extensions.get(key)
        if fixed is None:
            fixed = self._fixed_extensions[key] = self._encode_fixed(
                ca, profile, issuer_ski, self_signed
            )
        head, aki, tail = fixed
        ski = der.sequence(_SKI_OID, der.octet_string(der.octet_string(key_identifier(spki))))
        san = [_ext("subject_alt_name", general_names(alt_names)).dump()] if alt_names else []
        return [*head, ski, aki, *san, *tail]

    def _encode_fixed(
        self, ca: AuthorityRecord, profile: Profile, issuer_ski: bytes, self_signed: bool
    ) -> tuple[list[bytes], bytes, list[bytes]]:
        constraints: dict[str, object] = {"ca": profile.is_ca}
        if profile.path_length is not None:
            constraints["path_len_constraint"] = profile.path_length
        head = [
            _ext("basic_constraints", constraints, critical=True),
            _ext("key_usage", set(profile.key_usage), critical=True),
        ]
        if profile.extended_key_usage:
            head.append(
                _ext(
                    "extended_key_usage",
                    list(profile.extended_key_usage),
                    critical=profile.eku_critical,
                )
            )
        aki = _ext("authority_key_identifier", {"key_identifier": issuer_ski})
        tail = []
        if not self_signed:
            # Relying parties learn the issuer's status services; a root has no issuer.
            tail.append(
                _ext(
                    "crl_distribution_points",
                    [
                        {
                            "distribution_point": {
                                "full_name": [_uri(self._urls.crl(ca.id, ca.generation))]
                            }
                        }
                    ],
                )
            )
            tail.append(
                _ext(
                    "authority_information_access",
                    [
                        {
                            "access_method": "ocsp",
                            "access_location": _uri(self._urls.ocsp_url),
                        },
                        {
                            "access_method": "ca_issuers",
                            "access_location": _uri(self._urls.ca_issuers(ca.id, ca.generation)),
                        },
                    ],
                )
            )
        tail.append(_ext("certificate_policies", [{"policy_identifier": self._urls.policy_oid}]))
        if profile.ocsp_no_check:
            tail.append(_ext("ocsp_no_check", core.Null()))
        return [e.dump() for e in head], aki.dump(), [e.dump() for e in tail]


# Extension subjectKeyIdentifier (2.5.29.14): per certificate, so encoded by hand.
_SKI_OID = bytes.fromhex("0603551d0e")


def _ext(name: str, value: object, *, critical: bool = False) -> x509.Extension:
    return x509.Extension({"extn_id": name, "critical": critical, "extn_value": value})


def _uri(url: str) -> x509.GeneralName:
    return x509.GeneralName(name="uniform_resource_identifier", value=url)


def _requested_validity(profile: Profile, days: int | None) -> timedelta:
    if days is None:
        return profile.default_validity
    if days < 1:
        raise ValidationFailed("validity_days must be at least 1")
    validity = timedelta(days=days)
    if validity > profile.max_validity:
        raise ProfileValidityTooLong(
            f"profile {profile.name} allows at most {profile.max_validity.days} days"
        )
    return validity


def _signer_spki(keys: CaKeySource, ca: AuthorityRecord) -> bytes:
    return public_key_info(keys.signer(ca.key_id).spki_der)[1].dump()
