"""CRLs on a schedule: every CA's CRL is re-signed once it comes within ``overlap`` of its
nextUpdate, so a new CRL appears every ``validity - overlap`` and the previous one stays
valid ``overlap`` longer for relying parties that cached it (RFC 5280 §5.1.2.5).

Every worker may run the schedule; a coordination lock lets one of them issue at a time
(with Redis across processes and hosts; in-process coordination covers one process).
The CRL number is incremented in the database, so even two issuers never share one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from ca.service import SYSTEM_ACTOR, CertificateAuthority
from trust.coordination import Coordination
from trust.errors import ResourceBusy, TrustError

log = logging.getLogger(__name__)

LOCK_NAME = "ca:crl-schedule"
# Longer than issuing CRLs for every CA takes, so the lock outlives its holder's work;
# a holder that dies frees it after this.
_LOCK_TTL = 300.0


class CrlSchedule:
    def __init__(
        self, ca: CertificateAuthority, coordination: Coordination, overlap: timedelta
    ) -> None:
        self._ca = ca
        self._coordination = coordination
        self._overlap = overlap

    def run_once(self, *, actor: str = SYSTEM_ACTOR) -> list[str]:
        """Issue the CRLs that are due; the ids of the CAs refreshed (``id/generation``
        for a retired key's CRL).
        Nothing when another worker holds the lock: it is doing the same work."""
        try:
            with self._coordination.lock(LOCK_NAME, _LOCK_TTL, wait_timeout=0.05):
                due: list[tuple[str, int | None]] = [
                    (ca_id, None) for ca_id in self._ca.crl_due(self._overlap)
                ]
                due.extend(self._ca.retired_crls_due(self._overlap))
                issued = []
                for ca_id, generation in due:
                    try:
                        self._ca.crl(ca_id, generation=generation, actor=actor)
                    except TrustError:
                        # One CA failing (its key suspended, say) must not starve the others;
                        # the failure is audited by crl() and retried at the next run.
                        log.warning("scheduled CRL of %s failed", ca_id, exc_info=True)
                        continue
                    issued.append(ca_id if generation is None else f"{ca_id}/{generation}")
                return issued
        except ResourceBusy:
            return []

    async def run_periodically(self, every: float) -> None:
        """Run the schedule every ``every`` seconds until cancelled (the app's lifespan
        task); the work runs in a thread, off the event loop."""
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:  # a bad run (database down...) must not end the schedule
                log.exception("scheduled CRL run failed")
