"""Certificate profiles: what a certificate of each kind may and must contain.

Profiles are frozen data, versioned (a change makes a new version, so a stored
certificate's ``profile`` + ``profile_version`` says exactly which rules made it).
Subject attributes use asn1crypto's names (``common_name``, ``organization_name``...).
Key usages follow GM/T 0015 (standards.md §4): signing certificates
digitalSignature + nonRepudiation, encryption certificates keyEncipherment +
dataEncipherment + keyAgreement, CAs keyCertSign + cRLSign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from trust.errors import ProfileNotFound
from trust.keys import KeyAlgorithm

_ALL_KEYS = frozenset(KeyAlgorithm)
_EC_KEYS = frozenset({KeyAlgorithm.SM2, KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384})
_SM2_ONLY = frozenset({KeyAlgorithm.SM2})
# RSA below 2048 bits does not exist as a KeyAlgorithm, so every listed size is allowed.
_SIGNING_KEYS = _ALL_KEYS

_PERSON_ATTRS = frozenset(
    {
        "country_name",
        "state_or_province_name",
        "locality_name",
        "organization_name",
        "organizational_unit_name",
        "common_name",
        "serial_number",
        "email_address",
        "given_name",
        "surname",
    }
)
_ORG_ATTRS = frozenset(
    {
        "country_name",
        "state_or_province_name",
        "locality_name",
        "organization_name",
        "organizational_unit_name",
        "common_name",
        "organization_identifier",
    }
)

SIGNING_USAGE = frozenset({"digital_signature", "non_repudiation"})
ENCRYPTION_USAGE = frozenset({"key_encipherment", "data_encipherment", "key_agreement"})
CA_USAGE = frozenset({"key_cert_sign", "crl_sign", "digital_signature"})


@dataclass(frozen=True)
class Profile:
    name: str
    version: int
    description: str
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...] = ()  # dotted OIDs or asn1crypto names
    eku_critical: bool = False
    key_algorithms: frozenset[KeyAlgorithm] = _ALL_KEYS
    max_validity: timedelta = timedelta(days=365)
    default_validity: timedelta = timedelta(days=365)
    required_subject: frozenset[str] = frozenset({"common_name"})
    allowed_subject: frozenset[str] = _PERSON_ATTRS
    san_allowed: frozenset[str] = frozenset()  # "dns", "ip", "email"
    san_required: bool = False
    ocsp_no_check: bool = False
    # organizationIdentifier must be an 18-character unified social credit code.
    uscc_subject: bool = False
    is_ca: bool = False
    path_length: int | None = None


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="root_ca",
            version=1,
            description="self-signed root CA",
            key_usage=CA_USAGE,
            max_validity=timedelta(days=30 * 365),
            default_validity=timedelta(days=20 * 365),
            allowed_subject=_ORG_ATTRS,
            is_ca=True,
        ),
        Profile(
            name="issuing_ca",
            version=1,
            description="subordinate CA that issues end-entity certificates",
            key_usage=CA_USAGE,
            max_validity=timedelta(days=20 * 365),
            default_validity=timedelta(days=10 * 365),
            allowed_subject=_ORG_ATTRS,
            is_ca=True,
            path_length=0,
        ),
        Profile(
            name="person",
            version=1,
            description="natural person, signing certificate",
            key_usage=SIGNING_USAGE,
            extended_key_usage=("client_auth", "email_protection"),
            key_algorithms=_SIGNING_KEYS,
            max_validity=timedelta(days=3 * 365),
            san_allowed=frozenset({"email"}),
        ),
        Profile(
            name="organization",
            version=1,
            description="legal person (organisation) with its unified social credit code",
            key_usage=SIGNING_USAGE,
            extended_key_usage=("client_auth",),
            max_validity=timedelta(days=3 * 365),
            required_subject=frozenset(
                {"country_name", "organization_name", "common_name", "organization_identifier"}
            ),
            allowed_subject=_ORG_ATTRS,
            uscc_subject=True,
        ),
        Profile(
            name="server",
            version=1,
            description="TLS server",
            key_usage=frozenset({"digital_signature", "key_agreement"}),
            extended_key_usage=("server_auth",),
            key_algorithms=_ALL_KEYS,
            max_validity=timedelta(days=398),
            allowed_subject=_ORG_ATTRS,
            san_allowed=frozenset({"dns", "ip"}),
            san_required=True,
        ),
        Profile(
            name="seal_maker",
            version=1,
            description="electronic seal maker (制章人), signs SES_SealInfo",
            key_usage=SIGNING_USAGE,
            key_algorithms=_EC_KEYS,
            max_validity=timedelta(days=5 * 365),
            allowed_subject=_ORG_ATTRS,
        ),
        Profile(
            name="seal_signer",
            version=1,
            description="electronic seal holder (签章人), signs documents with a seal",
            key_usage=SIGNING_USAGE,
            key_algorithms=_EC_KEYS,
            max_validity=timedelta(days=3 * 365),
            allowed_subject=_ORG_ATTRS | _PERSON_ATTRS,
        ),
        Profile(
            name="report_signer",
            version=1,
            description="the service's validation-report signing key (signed reports). No "
            "EKU: none is registered for reports, and one without emailProtection would make "
            "`openssl cms -verify` refuse the reports for their S/MIME purpose check",
            key_usage=SIGNING_USAGE,
            key_algorithms=_SM2_ONLY,
            max_validity=timedelta(days=5 * 365),
            allowed_subject=_ORG_ATTRS,
        ),
        Profile(
            name="tsa",
            version=1,
            description="time-stamping unit (RFC 3161 §2.3: EKU timeStamping, critical)",
            key_usage=SIGNING_USAGE,
            extended_key_usage=("time_stamping",),
            eku_critical=True,
            max_validity=timedelta(days=5 * 365),
            allowed_subject=_ORG_ATTRS,
        ),
        Profile(
            name="ocsp",
            version=1,
            description="delegated OCSP responder (RFC 6960 §4.2.2.2, id-pkix-ocsp-nocheck)",
            key_usage=frozenset({"digital_signature", "non_repudiation"}),
            extended_key_usage=("ocsp_signing",),
            max_validity=timedelta(days=90),
            default_validity=timedelta(days=90),
            allowed_subject=_ORG_ATTRS,
            ocsp_no_check=True,
        ),
        Profile(
            name="encryption",
            version=1,
            description="encryption half of a GM/T 0015 dual certificate",
            key_usage=ENCRYPTION_USAGE,
            key_algorithms=_SM2_ONLY,
            max_validity=timedelta(days=3 * 365),
            allowed_subject=_ORG_ATTRS | _PERSON_ATTRS,
            san_allowed=frozenset({"email"}),
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileNotFound(f"no certificate profile {name!r}") from None


def list_profiles() -> list[Profile]:
    return sorted(PROFILES.values(), key=lambda p: p.name)
