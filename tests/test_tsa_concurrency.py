"""Serial numbers stay unique with two processes issuing at once, on SQLite and PostgreSQL,
and every token issued is recorded."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select

from tests.tsa_support import START, migrated
from timestamp import SqlTokenLog, TimestampAuthority, TsaUnit
from timestamp.schema import tsa_token
from trust.clock import FakeClock
from trust.cms import KeySigner
from trust.db import Database
from trust.keys import KeyAlgorithm, load_private_key

PER_PROCESS = 1000


def _issue_many(url: str, key_der: bytes, cert_der: bytes, count: int) -> list[str]:
    from asn1crypto import x509

    db = Database(url)
    signer = KeySigner(load_private_key(key_der), x509.Certificate.load(cert_der))
    tsa = TimestampAuthority(
        [TsaUnit("ecdsa", signer, "1.2.156.112233.3.2")], SqlTokenLog(db), FakeClock(START)
    )
    try:
        return [tsa.issue("sha256", bytes(32)).serial_hex for _ in range(count)]
    finally:
        db.dispose()


@pytest.mark.slow
def test_two_processes_issue_unique_serials(database_url: str) -> None:
    from tests.tsa_support import tsa_chain

    db = migrated(database_url)
    _root, cert, key = tsa_chain(KeyAlgorithm.ECDSA_P256)
    args = (database_url, key.private_bytes_pkcs8(), cert.dump(), PER_PROCESS)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_issue_many, [args, args])
    serials = [s for batch in results for s in batch]
    assert len(serials) == 2 * PER_PROCESS
    assert len(set(serials)) == len(serials)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(tsa_token)).scalar_one() == len(serials)
    db.dispose()
