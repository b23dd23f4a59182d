"""The validation layer's ``TimestampChecker``, implemented with ``verify_token``.

``trust.validation`` may not import this package, so it defines the protocol and the
API hands it this implementation.
"""

from __future__ import annotations

from timestamp.verify import verify_token
from trust.validation.timestamps import TokenCheck


class TokenChecker:
    """Reads and checks RFC 3161 / GM/T 0033 tokens for ``trust.validation``."""

    def check(
        self, token: bytes, *, data: bytes | None = None, digest: bytes | None = None
    ) -> TokenCheck:
        found = verify_token(token, data=data, digest=digest)
        return TokenCheck(
            gen_time=found.gen_time,
            accuracy=found.accuracy,
            serial_hex=found.serial_hex,
            policy=found.policy,
            hash_algorithm=found.hash_algorithm,
            signer_certificate=found.signer_certificate,
            certificates=found.cms.certificates,
            signature_ok=found.signature_ok,
            ess_ok=found.ess_ok,
            eku_ok=found.eku_ok,
            imprint_ok=found.imprint_ok,
            problems=found.problems,
        )
