"""The checks of seal verification that need trust: certificate paths to the service's
anchors (``trust.validation.PathValidator``), revocation, timestamp tokens, and the
registry status of seals this service made.

Revocation of a certificate the service's CA issued comes from its records. For one from
another CA it comes from the CRLs and OCSP responses the caller supplied
(``RevocationInput``, nothing is fetched), through the same path validation with the
caller's revocation mode: the answer is good, revoked (when, why, from which source) or
unknown (and why); unknown is INDETERMINATE/TRY_LATER where the mode requires data
(``require``; ``hard-fail`` for a certificate that names a CRL or OCSP location) and
``not_checked`` otherwise, so a report never claims a check it did not make.

Path results are cached per certificate (``cache_seconds``): a path that validated is
valid at any instant inside every certificate's validity window of that path, since no
revocation data goes into it (revocation is a separate check, never cached). So a
verifier of many stamps by one signer validates the chain once.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from seals.parse import ParsedSeal
from seals.registry import RegisteredSeal, SealStatus
from seals.service import NO_REVOCATION_DATA, CertificateStatus, RevocationInput, RevocationState
from seals.verify import Check, CheckName, CheckStatus, SubIndication
from timestamp.verify import verify_token
from trust.clock import Clock
from trust.errors import TrustError
from trust.sm3 import sm3
from trust.validation import CheckName as PathCheck
from trust.validation import CheckStatus as PathStatus
from trust.validation import PathRequest, PathResult, PathValidator, RevocationMode
from trust.validation import SubIndication as PathSubIndication
from trust.validation.certs import load_certificate, serial_hex
from trust.validation.report import RevocationStatus


class IssuedStatus(Protocol):
    """Revocation from the service CA's records (``seals.wiring.CaCertificateStatus``)."""

    def record(self, certificate: bytes) -> CertificateStatus | None:
        """The status of a DER certificate the CA issued; None for any other."""


class SealRegistry(Protocol):
    """What verification reads from the registry (``SealService`` is one)."""

    def registered(self, esid: str) -> RegisteredSeal | None:
        """The seal made under ``esid`` and its history; None when the registry has none."""


@dataclass(frozen=True)
class _Cached:
    expires: float  # monotonic
    result: PathResult
    window: tuple[datetime, datetime]  # when every certificate of the path is valid


_SIGNING_FAILURES = {
    SealStatus.SUSPENDED: SubIndication.SEAL_SUSPENDED_AT_SIGNING_TIME,
    SealStatus.REVOKED: SubIndication.SEAL_REVOKED,
    SealStatus.EXPIRED: SubIndication.SEAL_EXPIRED,
}
_NOW_FAILURES = {
    SealStatus.SUSPENDED: SubIndication.SEAL_SUSPENDED,
    SealStatus.REVOKED: SubIndication.SEAL_REVOKED,
    SealStatus.EXPIRED: SubIndication.SEAL_EXPIRED,
}


class SealTrust:
    """A ``seals.verify.TrustContext`` over the service's anchors, CA and registry."""

    def __init__(
        self,
        validator: PathValidator,
        issued: IssuedStatus,
        clock: Clock,
        *,
        intermediates: Sequence[bytes] = (),
        registry: SealRegistry | None = None,
        cache_seconds: float = 300.0,
    ) -> None:
        self._validator = validator
        self._issued = issued
        self._revocation_input = NO_REVOCATION_DATA
        self._clock = clock
        self._intermediates = tuple(intermediates)
        self._registry = registry
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, _Cached] = {}
        self._lock = threading.Lock()

    def with_revocation(self, revocation: RevocationInput) -> SealTrust:
        """This context with a caller's revocation data (sharing the path cache)."""
        if revocation == self._revocation_input:
            return self
        other = copy.copy(self)
        other._revocation_input = revocation
        return other

    # --- certificates --------------------------------------------------------------

    def certificate(
        self, name: CheckName, revocation: CheckName, cert_der: bytes, at: datetime | None
    ) -> tuple[Check, Check]:
        who = "maker" if name is CheckName.SEAL_MAKER_CERTIFICATE else "signer"
        when = at or self._clock.now()
        try:
            path = self._path(cert_der, when)
        except TrustError as exc:
            failed = Check(name, CheckStatus.FAILED, SubIndication.FORMAT_FAILURE, exc.detail)
            return failed, _not_checked(revocation, f"{who} certificate unusable")
        failure = path.failure
        if failure is not None:
            status = (
                CheckStatus.FAILED
                if failure.status is PathStatus.FAILED
                else CheckStatus.INDETERMINATE
            )
            chain = Check(
                name, status, failure.sub_indication, f"{who} certificate: {failure.message}"
            )
        else:
            anchor = path.chain[-1].subject if path.chain else "?"
            chain = Check(
                name,
                CheckStatus.PASSED,
                None,
                f"{who} certificate chains to the trust anchor {anchor} and is valid at "
                f"{when.isoformat()}",
            )
        return chain, self._revocation(revocation, who, cert_der, when)

    def _revocation(self, name: CheckName, who: str, cert_der: bytes, when: datetime) -> Check:
        status = self.status(cert_der, when, self._revocation_input)
        if status.state is RevocationState.UNKNOWN:
            if status.required:
                message = f"{who} certificate revocation unknown: {status.source}"
                return Check(name, CheckStatus.INDETERMINATE, PathSubIndication.TRY_LATER, message)
            return _not_checked(name, f"{who} certificate revocation not checked: {status.source}")
        if status.state is RevocationState.GOOD:
            return Check(
                name, CheckStatus.PASSED, None, f"{who} certificate not revoked ({status.source})"
            )
        if status.revoked_at is not None and status.revoked_at > when:
            return Check(
                name,
                CheckStatus.PASSED,
                None,
                f"{who} certificate revoked at {status.revoked_at.isoformat()}, after "
                f"{when.isoformat()} ({status.source})",
            )
        return Check(
            name,
            CheckStatus.FAILED,
            PathSubIndication.REVOKED,
            f"{who} certificate revoked ({status.reason or 'unspecified'}) before "
            f"{when.isoformat()} ({status.source})",
        )

    def status(
        self, cert_der: bytes, at: datetime, revocation: RevocationInput = NO_REVOCATION_DATA
    ) -> CertificateStatus:
        """The revocation status of a certificate at ``at`` (module docstring)."""
        try:
            issued = self._issued.record(cert_der)
        except ValueError:  # asn1crypto on a certificate it cannot read
            issued = None
        if issued is not None:
            return issued
        if revocation.mode is RevocationMode.NONE:
            return CertificateStatus(RevocationState.UNKNOWN, "revocation checking not requested")
        cert = load_certificate(cert_der)
        # As certvalidator's modes: hard-fail needs data where the certificate names a CRL
        # or OCSP location, require always.
        required = revocation.mode is RevocationMode.REQUIRE or (
            revocation.mode is RevocationMode.HARD_FAIL
            and bool(cert.crl_distribution_points or cert.ocsp_urls)
        )
        if not (revocation.crls or revocation.ocsps or required):
            return CertificateStatus(
                RevocationState.UNKNOWN,
                "not issued by this service's CA, and no CRL or OCSP response was given",
            )
        # A CRL or OCSP response that does not parse is the caller's bad input (a 4xx
        # problem, as on the verification routes), not an unknown status.
        result = self._validator.validate(
            PathRequest(
                cert_der,
                self._intermediates,
                at=at,
                crls=revocation.crls,
                ocsps=revocation.ocsps,
                revocation_mode=revocation.mode,
            )
        )
        return _third_party_status(serial_hex(cert.serial_number), result, required)

    def _path(self, cert_der: bytes, when: datetime) -> PathResult:
        key = sm3(cert_der)
        with self._lock:
            cached = self._cache.get(key)
        if (
            cached is not None
            and cached.expires > time.monotonic()
            and cached.window[0] <= when <= cached.window[1]
        ):
            return cached.result
        result = self._validator.validate(
            PathRequest(cert_der, self._intermediates, at=when, for_signature=True)
        )
        if result.ok and result.chain:
            window = (
                max(c.not_before for c in result.chain),
                min(c.not_after for c in result.chain),
            )
            entry = _Cached(time.monotonic() + self._cache_seconds, result, window)
            with self._lock:
                self._cache[key] = entry
        return result

    # --- timestamps ----------------------------------------------------------------

    def timestamp(
        self, name: CheckName, token: bytes, stamped: bytes
    ) -> tuple[Check, datetime | None]:
        try:
            verified = verify_token(token, data=stamped)
        # A token asn1crypto or the CMS layer cannot read, whatever it raises.
        except Exception:
            return Check(
                name,
                CheckStatus.NOT_CHECKED,
                SubIndication.TIMESTAMP_UNPARSEABLE,
                f"unparseable timestamp ({len(token)} bytes, not a CMS TimeStampToken)",
            ), None
        gen = verified.gen_time
        if not verified.ok or verified.signer_certificate is None:
            problems = "; ".join(verified.problems) or "no TSA certificate"
            return Check(
                name, CheckStatus.FAILED, SubIndication.TIMESTAMP_INVALID, f"timestamp: {problems}"
            ), None
        tsa, _ = self.certificate(
            CheckName.SIGNER_CERTIFICATE, name, verified.signer_certificate.dump(), gen
        )
        if tsa.status is not CheckStatus.PASSED:
            return Check(
                name, CheckStatus.INDETERMINATE, tsa.sub_indication, f"timestamp TSA {tsa.message}"
            ), None
        return Check(
            name,
            CheckStatus.PASSED,
            None,
            f"timestamp over the signature value verifies; genTime {gen.isoformat()}",
        ), gen

    # --- registry ------------------------------------------------------------------

    def seal_status(
        self, seal: ParsedSeal, at: datetime | None, proven: datetime | None, signing: bool
    ) -> Check:
        name, esid = CheckName.SEAL_STATUS, seal.info.es_id
        if self._registry is None:
            return _not_checked(name, "not checked: no seal registry configured")
        registered = self._registry.registered(esid)
        if registered is None:
            return _not_checked(name, f"seal {esid} is not in this service's registry")
        if registered.eseal != seal.der:
            return _not_checked(name, f"the seal differs from the one this registry made as {esid}")
        if signing and at is None and proven is None:
            return _not_checked(name, "no signing time to ask the registry about")
        now = self._clock.now()
        times = [(t, what) for t, what in ((at, "signing time"), (proven, "proven time")) if t]
        if not times:
            times = [(now, "verification time")]
        failures = _SIGNING_FAILURES if signing else _NOW_FAILURES
        for when, what in times:
            status = registered.status_at(when)
            if status is not SealStatus.ACTIVE:
                default = (
                    SubIndication.SEAL_NOT_ACTIVE_AT_SIGNING_TIME
                    if signing
                    else SubIndication.SEAL_NOT_ACTIVE
                )
                sub = failures.get(status, default) if status is not None else default
                return Check(
                    name,
                    CheckStatus.FAILED,
                    sub,
                    f"seal {esid} was {status or 'not yet applied for'} at the {what} "
                    f"{when.isoformat()}",
                )
        spoken = ", ".join(f"the {what} {when.isoformat()}" for when, what in times)
        return Check(
            name,
            CheckStatus.PASSED,
            None,
            f"seal {esid} was active at {spoken}; now {registered.status_at(now)}",
        )


def _third_party_status(leaf: str, result: PathResult, required: bool) -> CertificateStatus:
    """A path validation with the caller's revocation data, as the status of its leaf
    (serial ``leaf``; a revoked issuer revokes it too)."""
    for evidence in result.revocation:
        if evidence.status is RevocationStatus.REVOKED:
            whose = "" if evidence.certificate_serial == leaf else (
                f"its issuer {evidence.certificate_subject} is revoked: "
            )  # fmt: skip
            return CertificateStatus(
                RevocationState.REVOKED,
                evidence.source.value.upper(),
                evidence.revocation_time,
                whose + (evidence.revocation_reason or "unspecified"),
            )
    failure = result.failure
    if failure is not None:
        why = "no usable revocation data" if failure.check is PathCheck.REVOCATION else "path"
        return CertificateStatus(
            RevocationState.UNKNOWN, f"{why}: {failure.message}", required=required
        )
    sources = sorted(
        {e.source.value.upper() for e in result.revocation if e.certificate_serial == leaf}
    )
    if not sources:
        return CertificateStatus(
            RevocationState.UNKNOWN,
            "no usable CRL or OCSP response for it among those given",
            required=required,
        )
    return CertificateStatus(RevocationState.GOOD, " and ".join(sources))


def _not_checked(name: CheckName, message: str) -> Check:
    return Check(name, CheckStatus.NOT_CHECKED, None, message)
