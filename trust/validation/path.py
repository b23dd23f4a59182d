"""RFC 5280 certificate path validation through pyhanko-certvalidator, with SM2.

``PathValidator`` holds the trust anchors; each ``PathRequest`` brings the certificate,
the other certificates it may chain through, the CRLs and OCSP responses to use (nothing
is fetched), the revocation mode and the validation time. The result lists the chain, the
revocation evidence found for it and, on failure, the ETSI EN 319 102-1 sub-indication.

Validation time. ``at=None`` validates at the clock's current time. A given ``at`` is a
point-in-time validation: revocation information issued after ``at`` is accepted
(``retroactive_revinfo``), since a CRL published later is what shows whether a revocation
came before or after ``at``; a revocation dated after ``at`` does not fail the path but is
reported as a warning. (A certificate put on hold and released is indistinguishable from
one never revoked in such a CRL, a limit certvalidator documents.)

ETSI mapping. ``for_signature`` says what the time means. For a certificate
(GM/T 0029 ValidateCert) the question is its status at that time, so the answers are
definite: ``EXPIRED``, ``NOT_YET_VALID``, ``REVOKED`` (TOTAL_FAILED). For a signature the
time is the earliest proof that the signature existed (a timestamp, or now), so a
certificate expired or revoked by then does not prove the signature was made too late:
``OUT_OF_BOUNDS_NO_POE``, ``REVOKED_NO_POE`` or ``REVOKED_CA_NO_POE`` (INDETERMINATE), as
in EN 319 102-1 §5.2.6; TOTAL_FAILED/``REVOKED`` or ``EXPIRED`` would need a proof that
the signature was created after the event, which no input here carries. A certificate not
yet valid at the time is ``NOT_YET_VALID`` (TOTAL_FAILED) either way: the object existed
before the certificate. A revocation with reason certificateHold is ``TRY_LATER``.
A certificate signature that does not verify is TOTAL_FAILED/``SIG_CRYPTO_FAILURE`` on the
chain check (EN 319 102-1 names that sub-indication for the signature under validation;
a forged or broken certificate signature is as definite a failure, and the check says
which certificate). No path to an anchor is ``NO_CERTIFICATE_CHAIN_FOUND``; missing or
stale revocation data ``TRY_LATER``; other RFC 5280 failures (CA flag, key usage, name or
policy constraints, unknown critical extensions) ``CHAIN_CONSTRAINTS_FAILURE``.

Result cache ("chain cached"). A result depends on its inputs (certificate, others,
anchors, CRLs, OCSP responses, mode, kind, backend, tolerance) and the time; for
current-time validations the same inputs less than ``CACHE_WINDOW`` (1 s) apart reuse the
result with the new time (only a validity or nextUpdate boundary inside that second could
change it), point-in-time ones reuse it for the same ``at``. A revocation changes the
service's CRL, hence the key, so it is seen at once. Bounded LRU, shared by threads.

Supplied revocation data. certvalidator's soft-fail and hard-fail modes consult CRLs and
OCSP responses only for certificates that name a CRL distribution point or OCSP
location, so a CRL handed in that revokes a certificate naming neither would be ignored
and the path pass. When data was supplied in those modes, validation therefore runs first
as if revocation data were required for every certificate, then required for the
end-entity certificate only, and only then in the mode asked for; each later run happens
only when the earlier one found data missing. (With data for the leaf but not its CA, a
revoked CA that names no CRL location still goes unseen in soft-fail: ``require`` closes
that.)

Event loop. certvalidator is async; ``validate`` runs each call in the calling thread's
own event loop (one per thread, kept: ``asyncio.run`` would make and tear down a loop per
call, a sixth of a CMS verification). Nothing is fetched, so the coroutine never waits
on I/O: a shared loop thread would only serialise every validation of the process onto
one thread, whereas per-thread loops let FastAPI's threadpool threads run side by side
and share no loop-bound state. A thread that is already running a loop (async code calling
the sync method) cannot block on a nested one, so the call then runs in a helper thread;
async code should ``await validate_async`` instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from asn1crypto import crl, keys, ocsp, x509
from asn1crypto.core import Asn1Value
from cryptography.exceptions import InvalidSignature as PycaInvalidSignature
from cryptography.hazmat.primitives import hashes
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    AlgorithmNotSupported,
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientPOEError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    SignatureValidationContext,
    SignatureValidator,
)

from trust.clock import Clock, SystemClock
from trust.cms.asn1 import encoding
from trust.errors import ValidationFailed
from trust.sm2.backend import SM2Backend
from trust.validation.certs import (
    CertificateInput,
    CrlInput,
    OcspInput,
    certificate_info,
    load_certificate,
    load_crl,
    load_ocsp_response,
    name_text,
    serial_hex,
)
from trust.validation.ocsp_source import OcspSource, fetch_ocsp
from trust.validation.report import (
    CertificateInfo,
    Check,
    CheckName,
    CheckStatus,
    Finding,
    RevocationEvidence,
    RevocationSource,
    RevocationStatus,
    SubIndication,
)
from trust.validation.sm2_validator import SM2SignatureValidator

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class RevocationMode(StrEnum):
    """certvalidator's revocation modes: ``soft-fail`` ignores missing or unusable
    revocation data, ``hard-fail`` requires it for certificates that declare a CRL or OCSP
    location, ``require`` for every certificate; ``none`` checks nothing."""

    NONE = "none"
    SOFT_FAIL = "soft-fail"
    HARD_FAIL = "hard-fail"
    REQUIRE = "require"


@dataclass(frozen=True)
class PathRequest:
    certificate: CertificateInput
    intermediates: Sequence[CertificateInput] = ()
    at: datetime | None = None  # None: the clock's current time
    crls: Sequence[CrlInput] = ()
    ocsps: Sequence[OcspInput] = ()
    revocation_mode: RevocationMode = RevocationMode.SOFT_FAIL
    for_signature: bool = False  # the time is a signature's proof of existence (see module)
    # In-process OCSP (the service's own CAs), asked before validating (ocsp_source.py).
    ocsp_source: OcspSource | None = None


@dataclass(frozen=True)
class PathFailure:
    check: CheckName
    status: CheckStatus  # FAILED or INDETERMINATE
    sub_indication: SubIndication
    message: str
    certificate: CertificateInfo | None = None  # the certificate the failure is about


@dataclass(frozen=True)
class CertificateSignatureFailure:
    """A certificate of the path whose signature did not verify, and the key it was tried
    with; what SM2 diagnostics need."""

    certificate: x509.Certificate
    issuer_key: keys.PublicKeyInfo
    unsupported: bool  # the algorithm could not be verified at all, rather than failing


@dataclass(frozen=True)
class PathResult:
    validation_time: datetime
    point_in_time: bool
    revocation_mode: RevocationMode
    chain: tuple[CertificateInfo, ...]  # the certificate first, the trust anchor last
    revocation: tuple[RevocationEvidence, ...]
    unchecked_revocation: tuple[CertificateInfo, ...]  # below the anchor, with no evidence
    failure: PathFailure | None
    signature_failures: tuple[CertificateSignatureFailure, ...]
    warnings: tuple[Finding, ...]
    fetched_ocsps: tuple[bytes, ...] = ()  # DER answers of the request's ocsp_source

    @property
    def ok(self) -> bool:
        return self.failure is None

    def checks(self) -> tuple[Check, ...]:
        """The chain, validity and revocation checks this validation stands for."""
        if self.failure is not None:
            return tuple(self._after_failure(name, self.failure) for name in _PATH_CHECKS)
        anchor = self.chain[-1].subject if self.chain else "?"
        return (
            Check(
                name=CheckName.CERTIFICATE_CHAIN,
                status=CheckStatus.PASSED,
                message=f"{len(self.chain)} certificate(s) chain to the trust anchor {anchor}; "
                "signatures, names, CA flags, key usages and constraints checked (RFC 5280)",
            ),
            Check(
                name=CheckName.CERTIFICATE_VALIDITY,
                status=CheckStatus.PASSED,
                message=f"every certificate of the chain is valid at {_iso(self.validation_time)}",
            ),
            self._revocation_check(),
        )

    def _after_failure(self, name: CheckName, failure: PathFailure) -> Check:
        if name is failure.check:
            return Check(
                name=name,
                status=failure.status,
                sub_indication=failure.sub_indication,
                message=failure.message,
            )
        if name is CheckName.REVOCATION and self.revocation_mode is RevocationMode.NONE:
            return _revocation_not_requested()
        return Check(
            name=name,
            status=CheckStatus.NOT_PERFORMED,
            message=f"not completed: path validation stopped at the {failure.check} check "
            f"({failure.sub_indication})",
        )

    def _revocation_check(self) -> Check:
        if self.revocation_mode is RevocationMode.NONE:
            return _revocation_not_requested()
        if self.unchecked_revocation:
            names = "; ".join(c.subject for c in self.unchecked_revocation)
            return Check(
                name=CheckName.REVOCATION,
                status=CheckStatus.NOT_PERFORMED,
                message=f"no usable CRL or OCSP response for: {names} "
                f"(accepted in {self.revocation_mode} mode)",
            )
        sources = sorted({e.source.value for e in self.revocation})
        return Check(
            name=CheckName.REVOCATION,
            status=CheckStatus.PASSED,
            message=f"not revoked at {_iso(self.validation_time)}, from "
            f"{' and '.join(sources) or 'nothing: the certificate is a trust anchor'}",
        )


_PATH_CHECKS = (CheckName.CERTIFICATE_CHAIN, CheckName.CERTIFICATE_VALIDITY, CheckName.REVOCATION)


@dataclass(frozen=True)
class _Prepared:
    request: PathRequest  # with the ocsp_source's answers among its ocsps
    moment: datetime
    key: bytes
    fetched: tuple[bytes, ...]
    cached: PathResult | None


def _revocation_not_requested() -> Check:
    return Check(
        name=CheckName.REVOCATION,
        status=CheckStatus.NOT_PERFORMED,
        message="revocation checking not requested",
    )


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class PathValidator:
    """Validates certificate paths up to a fixed set of trust anchors."""

    def __init__(
        self,
        anchors: Iterable[CertificateInput],
        *,
        clock: Clock | None = None,
        sm2_backend: SM2Backend | None = None,
        time_tolerance: timedelta = timedelta(seconds=1),
    ) -> None:
        self._anchors = tuple(load_certificate(a) for a in anchors)
        self._clock = clock or SystemClock()
        self._sm2_backend = sm2_backend
        self._time_tolerance = time_tolerance

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self._anchors

    def validate(self, request: PathRequest) -> PathResult:
        """Synchronous ``validate_async``: a cached result without an event loop, else in
        a private one (module docstring)."""
        prepared = self._prepare(request)
        return prepared.cached or run_sync(self._validate_uncached(prepared))

    async def validate_async(self, request: PathRequest) -> PathResult:
        prepared = self._prepare(request)
        return prepared.cached or await self._validate_uncached(prepared)

    def _prepare(self, request: PathRequest) -> _Prepared:
        """The request with its in-process OCSP answers, its cache key and cached result."""
        point_in_time = request.at is not None
        moment = request.at if request.at is not None else self._clock.now()
        if moment.utcoffset() is None:
            raise ValidationFailed("the validation time must carry a time zone")
        fetched: tuple[bytes, ...] = ()
        if request.ocsp_source is not None:
            target = load_certificate(request.certificate)
            others = [load_certificate(c) for c in request.intermediates]
            fetched = fetch_ocsp(request.ocsp_source, [target, *others], [*others, *self._anchors])
            request = replace(request, ocsps=(*request.ocsps, *fetched), ocsp_source=None)
        key = self._cache_key(request, moment if point_in_time else None)
        return _Prepared(request, moment, key, fetched, _RESULTS.get(key, moment))

    async def _validate_uncached(self, prepared: _Prepared) -> PathResult:
        result = await self._validate(prepared.request, prepared.moment)
        result = replace(result, fetched_ocsps=prepared.fetched)
        _RESULTS.put(prepared.key, prepared.moment, result)
        return result

    def _cache_key(self, request: PathRequest, at: datetime | None) -> bytes:
        """Everything a result depends on but the current time (module docstring)."""
        digest = hashlib.sha256()
        fixed = (
            f"{RevocationMode(request.revocation_mode)}|{request.for_signature}|"
            f"{at.isoformat() if at else '-'}|{id(self._sm2_backend)}|{self._time_tolerance}"
        )
        digest.update(fixed.encode())
        for group in (
            self._anchors,
            (request.certificate,),
            request.intermediates,
            request.crls,
            request.ocsps,
        ):
            digest.update(b"|group")
            for item in sorted(_der(x) for x in group):
                digest.update(len(item).to_bytes(8, "big") + item)
        return digest.digest()

    async def _validate(self, request: PathRequest, moment: datetime) -> PathResult:
        target = load_certificate(request.certificate)
        others = [load_certificate(c) for c in request.intermediates]
        crls = [load_crl(c) for c in request.crls]
        ocsps = [load_ocsp_response(o) for o in request.ocsps]
        point_in_time = request.at is not None
        mode = RevocationMode(request.revocation_mode)

        for policy in _policies(mode, bool(crls or ocsps)):
            journal = _Journal(SM2SignatureValidator(backend=self._sm2_backend))
            context = ValidationContext(
                trust_roots=list(self._anchors),
                other_certs=others,
                # Always explicit, so that the service clock (not certvalidator's) decides.
                moment=moment,
                crls=crls,
                ocsps=ocsps,
                revinfo_policy=CertRevTrustPolicy(policy, retroactive_revinfo=point_in_time),
                time_tolerance=self._time_tolerance,
                signature_validator=journal,
            )
            path, failure_path, error = await _attempt(target, context)
            if not isinstance(error, InsufficientRevinfoError):
                break

        certs = _path_certificates(path or failure_path, target)
        chain = tuple(certificate_info(c, trust_anchor=_is_anchor(c, self._anchors)) for c in certs)
        evidence = tuple(
            e
            for c in certs
            if not _is_anchor(c, self._anchors)
            for e in _evidence(c, crls, ocsps, journal.verified)
        )
        signature_failures = journal.failures_in(certs)
        failure = (
            None
            if error is None
            else _map_failure(
                error,
                request.for_signature,
                moment,
                certs,
                evidence,
                signature_failures,
                self._time_tolerance,
            )
        )
        covered = {(e.certificate_subject, e.certificate_serial) for e in evidence}
        unchecked = tuple(
            info
            for info in chain
            if not info.trust_anchor and (info.subject, info.serial) not in covered
        )
        warnings = [
            Finding(code="revocation.soft_fail", message=str(e))
            for e in context.soft_fail_exceptions
        ]
        if failure is None:
            warnings.extend(_later_revocations(evidence, moment))
        return PathResult(
            validation_time=moment,
            point_in_time=point_in_time,
            revocation_mode=mode,
            chain=chain,
            revocation=evidence,
            unchecked_revocation=unchecked if mode is not RevocationMode.NONE else (),
            failure=failure,
            signature_failures=signature_failures,
            warnings=tuple(warnings),
        )


def _policies(mode: RevocationMode, supplied: bool) -> list[RevocationCheckingPolicy]:
    """The revocation policies to try, strictest first (module docstring, "Supplied
    revocation data"): the mode's own only when no CRL or OCSP response was given."""
    own = RevocationCheckingPolicy.from_legacy(mode.value)
    if not supplied or mode not in (RevocationMode.SOFT_FAIL, RevocationMode.HARD_FAIL):
        return [own]
    strict = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    return [
        RevocationCheckingPolicy(strict, strict),
        RevocationCheckingPolicy(strict, own.intermediate_ca_cert_rule),
        own,
    ]


async def _attempt(
    target: x509.Certificate, context: ValidationContext
) -> tuple[ValidationPath | None, ValidationPath | None, Exception | None]:
    """(path, path of the failure, error) of one certvalidator run."""
    try:
        path = await CertificateValidator(target, validation_context=context).async_validate_path()
    except PathValidationError as exc:
        return None, exc.original_path, exc
    except (PathBuildingError, ValidationError) as exc:
        return None, None, exc
    # certvalidator fails on some parseable but unusual input with built-in exceptions;
    # that says nothing about the chain, so it is reported as a general failure.
    except Exception as exc:
        log.warning("certificate path validation failed unexpectedly", exc_info=True)
        return None, None, exc
    return path, None, None


def _der(item: bytes | Asn1Value) -> bytes:
    return item if isinstance(item, bytes) else encoding(item)


class _ResultCache:
    """Path results by input, reused for current-time validations less than
    ``CACHE_WINDOW`` apart (module docstring)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, tuple[datetime, PathResult]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes, moment: datetime) -> PathResult | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        when, result = entry
        if result.point_in_time:
            return result
        if abs(moment - when) > CACHE_WINDOW:
            return None
        return replace(result, validation_time=moment)

    def put(self, key: bytes, moment: datetime, result: PathResult) -> None:
        with self._lock:
            self._entries[key] = (moment, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


CACHE_WINDOW = timedelta(seconds=1)
_RESULTS = _ResultCache()
_thread_loop = threading.local()


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from synchronous code (module docstring)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop: asyncio.AbstractEventLoop | None = getattr(_thread_loop, "loop", None)
        if loop is None or loop.is_closed():
            loop = _thread_loop.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="path-validation") as pool:
        return pool.submit(asyncio.run, coro).result()


class _Journal(SignatureValidator):
    """Wraps the SM2 validator and remembers what verified and what did not: the verified
    CRLs and OCSP responses are the revocation evidence, the failures feed diagnostics."""

    def __init__(self, inner: SignatureValidator) -> None:
        self._inner = inner
        self.verified: set[bytes] = set()
        self._failed: list[tuple[bytes, keys.PublicKeyInfo, bool]] = []

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: Any,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        try:
            self._inner.validate_signature(
                signature, signed_data, public_key_info, signature_algorithm, context
            )
        except AlgorithmNotSupported:
            self._failed.append((signed_data, public_key_info, True))
            raise
        except PycaInvalidSignature:
            self._failed.append((signed_data, public_key_info, False))
            raise
        # pyca raises ValueError / UnsupportedAlgorithm on keys or parameters it cannot
        # use; certvalidator only handles InvalidSignature, so it is turned into one.
        except Exception as exc:
            self._failed.append((signed_data, public_key_info, True))
            raise AlgorithmNotSupported(f"signature cannot be verified: {exc}") from None
        self.verified.add(signed_data)

    def failures_in(
        self, certs: Sequence[x509.Certificate]
    ) -> tuple[CertificateSignatureFailure, ...]:
        by_tbs = {c["tbs_certificate"].dump(): c for c in certs}
        return tuple(
            CertificateSignatureFailure(by_tbs[data], key, unsupported)
            for data, key, unsupported in self._failed
            if data in by_tbs
        )


def _path_certificates(
    path: ValidationPath | None, target: x509.Certificate
) -> list[x509.Certificate]:
    """The path's certificates, the validated one first; just the target without a path."""
    if path is None:
        return [target]
    certs = list(path.iter_certs(include_root=True))
    certs.reverse()
    return certs or [target]


def _is_anchor(cert: x509.Certificate, anchors: Sequence[x509.Certificate]) -> bool:
    der = encoding(cert)
    return any(encoding(a) == der for a in anchors)


def _map_failure(
    error: Exception,
    for_signature: bool,
    moment: datetime,
    certs: Sequence[x509.Certificate],
    evidence: Sequence[RevocationEvidence],
    signature_failures: Sequence[CertificateSignatureFailure],
    tolerance: timedelta,
) -> PathFailure:
    """certvalidator's exception -> the failed check and its ETSI sub-indication."""
    message = str(error) or type(error).__name__
    chain_check, validity_check, revocation_check = _PATH_CHECKS
    indeterminate, failed = CheckStatus.INDETERMINATE, CheckStatus.FAILED

    if isinstance(error, (PathBuildingError, InvalidCertificateError)):
        return PathFailure(
            chain_check,
            indeterminate,
            SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
            f"no path to a trust anchor: {message}",
            certificate_info(certs[0]),
        )
    if isinstance(error, RevokedError):
        revoked = _revoked_certificate(evidence, certs)
        if revoked is not None:
            message = f"{revoked.subject} (serial {revoked.serial}): {message}"
        if getattr(error.reason, "native", None) == "certificate_hold":
            return PathFailure(
                revocation_check, indeterminate, SubIndication.TRY_LATER, message, revoked
            )
        if not for_signature:
            return PathFailure(revocation_check, failed, SubIndication.REVOKED, message, revoked)
        sub = SubIndication.REVOKED_NO_POE if error.is_ee_cert else SubIndication.REVOKED_CA_NO_POE
        return PathFailure(
            revocation_check,
            indeterminate,
            sub,
            f"{message} No proof that the signature existed before the revocation.",
            revoked,
        )
    if isinstance(error, InsufficientRevinfoError):  # includes StaleRevinfoError
        return PathFailure(revocation_check, indeterminate, SubIndication.TRY_LATER, message)
    if isinstance(error, (ExpiredError, NotYetValidError)):
        outside = _outside_validity(certs, moment, tolerance)
        if outside is not None:
            message = (
                f"{outside.subject} (serial {outside.serial}) is not valid at {_iso(moment)}: "
                f"valid from {_iso(outside.not_before)} to {_iso(outside.not_after)}"
            )
        if isinstance(error, NotYetValidError):
            return PathFailure(
                validity_check, failed, SubIndication.NOT_YET_VALID, message, outside
            )
        if not for_signature:
            return PathFailure(validity_check, failed, SubIndication.EXPIRED, message, outside)
        return PathFailure(
            validity_check,
            indeterminate,
            SubIndication.OUT_OF_BOUNDS_NO_POE,
            f"{message}; no proof that the signature existed before the expiry",
            outside,
        )
    if isinstance(error, DisallowedAlgorithmError):
        return PathFailure(
            chain_check, indeterminate, SubIndication.CRYPTO_CONSTRAINTS_FAILURE, message
        )
    if isinstance(error, InsufficientPOEError):
        return PathFailure(chain_check, indeterminate, SubIndication.NO_POE, message)
    if isinstance(error, PathValidationError):
        for bad in signature_failures:
            info = certificate_info(bad.certificate)
            if bad.unsupported:
                return PathFailure(
                    chain_check,
                    indeterminate,
                    SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE,
                    f"the signature of {info.subject} cannot be verified: {message}",
                    info,
                )
            return PathFailure(
                chain_check,
                failed,
                SubIndication.SIG_CRYPTO_FAILURE,
                f"the signature of {info.subject} (serial {info.serial}) does not verify "
                "with its issuer's key",
                info,
            )
        return PathFailure(
            chain_check, indeterminate, SubIndication.CHAIN_CONSTRAINTS_FAILURE, message
        )
    return PathFailure(
        chain_check,
        indeterminate,
        SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE,
        f"the certificates could not be processed: {message}",
    )


def _outside_validity(
    certs: Sequence[x509.Certificate], moment: datetime, tolerance: timedelta
) -> CertificateInfo | None:
    """The certificate nearest the anchor that is not valid at ``moment``, as certvalidator
    processes them from the anchor down."""
    for cert in reversed(certs):
        validity = cert["tbs_certificate"]["validity"]
        not_before, not_after = validity["not_before"].native, validity["not_after"].native
        if moment + tolerance < not_before or moment - tolerance > not_after:
            return certificate_info(cert)
    return None


def _revoked_certificate(
    evidence: Sequence[RevocationEvidence], certs: Sequence[x509.Certificate]
) -> CertificateInfo | None:
    revoked = {
        (e.certificate_subject, e.certificate_serial)
        for e in evidence
        if e.status is RevocationStatus.REVOKED
    }
    for cert in certs:
        info = certificate_info(cert)
        if (info.subject, info.serial) in revoked:
            return info
    return None


def _later_revocations(evidence: Iterable[RevocationEvidence], moment: datetime) -> list[Finding]:
    return [
        Finding(
            code="revocation.revoked_after_validation_time",
            message=f"{e.certificate_subject} was revoked at {_iso(e.revocation_time)}, "
            f"after the validation time {_iso(moment)}",
            details={"serial": e.certificate_serial, "reason": e.revocation_reason or ""},
        )
        for e in evidence
        if e.status is RevocationStatus.REVOKED
        and e.revocation_time is not None
        and e.revocation_time >= moment
    ]


# --- revocation evidence ---------------------------------------------------------------


def _evidence(
    cert: x509.Certificate,
    crls: Sequence[crl.CertificateList],
    ocsps: Sequence[ocsp.OCSPResponse],
    verified: set[bytes],
) -> list[RevocationEvidence]:
    """The supplied CRLs and OCSP responses about ``cert`` whose signatures certvalidator
    verified during this validation, i.e. those it accepted as coming from the right issuer.
    Indirect CRLs are not attributed."""
    found = [e for c in crls if (e := _crl_evidence(cert, c, verified)) is not None]
    for response in ocsps:
        found.extend(_ocsp_evidence(cert, response, verified))
    return found


def _crl_evidence(
    cert: x509.Certificate, certificate_list: crl.CertificateList, verified: set[bytes]
) -> RevocationEvidence | None:
    tbs = certificate_list["tbs_cert_list"]
    if tbs.dump() not in verified or certificate_list.issuer != cert.issuer:
        return None
    status, when, reason = RevocationStatus.GOOD, None, None
    for entry in tbs["revoked_certificates"]:
        if entry["user_certificate"].native == cert.serial_number:
            status = RevocationStatus.REVOKED
            when = entry["revocation_date"].native
            reason_value = entry.crl_reason_value
            reason = reason_value.native if reason_value is not None else None
            break
    return RevocationEvidence(
        source=RevocationSource.CRL,
        certificate_subject=name_text(cert.subject),
        certificate_serial=serial_hex(cert.serial_number),
        issuer=name_text(certificate_list.issuer),
        this_update=tbs["this_update"].native,
        next_update=tbs["next_update"].native,
        status=status,
        revocation_time=when,
        revocation_reason=reason,
    )


_CERT_ID_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sm3": hashes.SM3,
}


def _ocsp_evidence(
    cert: x509.Certificate, response: ocsp.OCSPResponse, verified: set[bytes]
) -> list[RevocationEvidence]:
    if response["response_status"].native != "successful":
        return []
    basic = response.basic_ocsp_response
    tbs = basic["tbs_response_data"]
    if tbs.dump() not in verified:
        return []
    found = []
    for single in tbs["responses"]:
        cert_id = single["cert_id"]
        algorithm = _CERT_ID_HASHES.get(cert_id["hash_algorithm"]["algorithm"].native)
        if algorithm is None or cert_id["serial_number"].native != cert.serial_number:
            continue
        digest = hashes.Hash(algorithm())
        digest.update(cert.issuer.dump())
        if digest.finalize() != cert_id["issuer_name_hash"].native:
            continue
        status = single["cert_status"]
        revoked = status.chosen if status.name == "revoked" else None
        reason = revoked["revocation_reason"].native if revoked is not None else None
        found.append(
            RevocationEvidence(
                source=RevocationSource.OCSP,
                certificate_subject=name_text(cert.subject),
                certificate_serial=serial_hex(cert.serial_number),
                issuer=_responder_text(tbs["responder_id"]),
                this_update=single["this_update"].native,
                next_update=single["next_update"].native,
                produced_at=tbs["produced_at"].native,
                status=RevocationStatus(status.name),
                revocation_time=revoked["revocation_time"].native if revoked is not None else None,
                revocation_reason=reason,
            )
        )
    return found


def _responder_text(responder_id: ocsp.ResponderId) -> str:
    if responder_id.name == "by_name":
        return name_text(responder_id.chosen)
    return f"key hash {responder_id.chosen.native.hex()}"
