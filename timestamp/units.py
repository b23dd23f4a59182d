"""TSA units (one key, certificate and policy each) and the clock-health hook.

SM2 units sign with the ``GMT0033`` CMS profile: the token is an RFC 3161
TimeStampToken (ContentInfo id-signedData, eContentType id-ct-TSTInfo; neither has a
GM/T 0010 counterpart that RFC 3161 clients would accept), with the GM/T 0006 OIDs
where GM/T 0010 names the algorithms: digest SM3 (1.2.156.10197.1.401) and the
SignerInfo signature algorithm SM2-1 (1.2.156.10197.1.301.1). Verifiers here accept
the GM/T 0010 content type and SM3withSM2 (.501) as well. Other units use RFC 5652.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from asn1crypto import x509

from timestamp.protocol import TstInfoEncoder
from trust import oids
from trust.cms import ID_CT_TSTINFO, RFC5652, CmsProfile, CmsSigner
from trust.cms.algorithms import PKCS7_DATA, PKCS7_SIGNED_DATA
from trust.cms.build import SignedDataTemplate
from trust.errors import ConfigurationError
from trust.keys import KeyAlgorithm

GMT0033 = CmsProfile("gmt0033", PKCS7_SIGNED_DATA, PKCS7_DATA, oids.SM2_SIGN)


@dataclass(frozen=True)
class TsaUnit:
    """One time-stamping unit. ``policy`` is the default TSA policy OID; a request may
    also name one of ``other_policies``. ``chain`` (issuer certificates) goes into the
    token beside the unit certificate when the client sets certReq."""

    name: str
    signer: CmsSigner
    policy: str
    other_policies: frozenset[str] = frozenset()
    accuracy: timedelta = timedelta(seconds=1)
    chain: Sequence[x509.Certificate] = ()
    profile: CmsProfile | None = field(default=None)  # None: GMT0033 for SM2, else RFC5652
    # Encoded once per unit (and certReq choice): what every token of the unit shares.
    _templates: dict[bool, SignedDataTemplate] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    _tst_info: list[TstInfoEncoder] = field(
        default_factory=list, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        # A TSTInfo accuracy of zero would be an empty SEQUENCE, and no clock is exact.
        if self.accuracy < timedelta(microseconds=1):
            raise ConfigurationError(f"TSA unit {self.name}: the accuracy must be positive")

    @property
    def policies(self) -> frozenset[str]:
        return self.other_policies | {self.policy}

    @property
    def cms_profile(self) -> CmsProfile:
        if self.profile is not None:
            return self.profile
        return GMT0033 if self.signer.algorithm is KeyAlgorithm.SM2 else RFC5652

    def template(self, include_certificates: bool) -> SignedDataTemplate:
        """The token's SignedData parts; ``include_certificates`` adds the certificate and
        ``chain`` (the client's certReq)."""
        cached = self._templates.get(include_certificates)
        if cached is None:
            cached = self._templates[include_certificates] = SignedDataTemplate(
                self.signer.certificate,
                self.signer.algorithm,
                profile=self.cms_profile,
                content_type=ID_CT_TSTINFO,
                include_certificates=include_certificates,
                extra_certificates=self.chain,
            )
        return cached

    @property
    def tst_info(self) -> TstInfoEncoder:
        if not self._tst_info:
            self._tst_info.append(TstInfoEncoder(self.signer.certificate.subject, self.accuracy))
        return self._tst_info[0]


class UnitSource(Protocol):
    """The units a TSA serves now, by name (fixed, or re-read from the store)."""

    def current(self) -> Mapping[str, TsaUnit]: ...

    def refresh(self) -> None:
        """Re-read now (after a rotation made in this process)."""


class FixedUnits:
    def __init__(self, units: Sequence[TsaUnit]) -> None:
        if not units:
            raise ConfigurationError("a TSA needs at least one unit")
        self._units = {u.name: u for u in units}
        if len(self._units) != len(units):
            raise ConfigurationError("TSA unit names must be unique")
        self.first = units[0].name

    def current(self) -> Mapping[str, TsaUnit]:
        return self._units

    def refresh(self) -> None:
        pass  # nothing to re-read


class ClockHealth(Protocol):
    """Whether the clock is trustworthy now (NTP/PTP synchronised within the accuracy);
    the operator wires it to their time-source monitoring."""

    def synchronised(self) -> bool: ...


class ManualClockHealth:
    """A clock-health flag set by hand (operator switch, tests); synchronised by default."""

    def __init__(self, synchronised: bool = True) -> None:
        self._synchronised = synchronised
        self._lock = threading.Lock()

    def synchronised(self) -> bool:
        with self._lock:
            return self._synchronised

    def set(self, synchronised: bool) -> None:
        with self._lock:
            self._synchronised = synchronised


class FlagFileClockHealth:
    """Unsynchronised while ``path`` exists: the operator's time-source monitor (e.g. a
    cron job around ``chronyc waitsync`` or ``ntpstat``) creates the file when the clock
    drifts out of the TSA's accuracy and removes it when it is back. One ``stat`` per call."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def synchronised(self) -> bool:
        return not self._path.exists()
