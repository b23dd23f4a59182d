"""The TSA behind a real uvicorn server made by ``trustctl init`` + ``trustctl serve``:
pyHanko's HTTPTimeStamper timestamps a PDF that pyHanko then validates, and serial numbers
stay unique with two worker processes issuing concurrently and across a restart."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asn1crypto import cms, pem, tsp, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import func, select

from tests.conftest import scale
from tests.pdf_support import make_pdf
from tests.tsa_support import request, served, server_env, trustctl
from timestamp import parse_response
from timestamp.schema import tsa_token
from trust.db import Database

QUERY = {"Content-Type": "application/timestamp-query"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = server_env(tmp_path_factory.mktemp("tsa") / "var")
    trustctl(env, "init")
    return env


@pytest.fixture(scope="module")
def base(env: dict[str, str]) -> Iterator[str]:
    with served(env) as url:
        yield url


def _unit_root(base: str, name: str) -> x509.Certificate:
    units = httpx.get(f"{base}/v1/tsa/units").json()["units"]
    chain = next(u["chain_pem"] for u in units if u["name"] == name)
    ders = [der for _, _, der in pem.unarmor(chain.encode(), multiple=True)]
    return x509.Certificate.load(ders[-1])


def test_pyhanko_timestamps_a_pdf_over_http_and_validates_it(base: str) -> None:
    root = _unit_root(base, "ecdsa")
    stamper = PdfTimeStamper(HTTPTimeStamper(f"{base}/tsa/ecdsa", timeout=30))
    out = stamper.timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())),
        "sha256",
        ValidationContext(trust_roots=[root], allow_fetching=False),
    )
    reader = PdfFileReader(out)
    (embedded,) = reader.embedded_signatures
    status = validate_pdf_timestamp(
        embedded, validation_context=ValidationContext(trust_roots=[root], allow_fetching=False)
    )
    assert status.intact and status.valid and status.trusted, status.summary()


def _serials(base: str, count: int, clients: int) -> list[int]:
    """``count`` time-stamp requests over keep-alive connections from ``clients`` threads."""
    found: list[int] = []
    lock = threading.Lock()
    body = request(b"concurrency", "sm3")

    def work(n: int) -> None:
        mine = []
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(n):
                r = client.post("/tsa", content=body, headers=QUERY)
                assert r.status_code == 200, r.text
                token = parse_response(r.content).token
                assert token is not None
                signed = cms.ContentInfo.load(token)["content"]
                content = signed["encap_content_info"]["content"].parsed
                assert isinstance(content, tsp.TSTInfo)
                mine.append(content["serial_number"].native)
        with lock:
            found.extend(mine)

    share = [count // clients + (i < count % clients) for i in range(clients)]
    threads = [threading.Thread(target=work, args=(n,)) for n in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == count
    return found


@pytest.mark.slow
def test_serials_unique_with_two_workers_and_across_a_restart(tmp_path: Path) -> None:
    env = server_env(tmp_path / "var")
    trustctl(env, "init")
    total = scale(20_000, 600)
    with served(env, workers=2) as base:
        first = _serials(base, total, clients=8)
    assert len(set(first)) == len(first)
    with served(env, workers=2) as base:  # a restart: fresh processes, same store
        second = _serials(base, scale(2_000, 100), clients=4)
    everything = first + second
    assert len(set(everything)) == len(everything)
    # Every token was recorded before it was answered.
    db = Database(f"sqlite:///{tmp_path / 'var' / 'trust.db'}")
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(tsa_token)).scalar_one() == len(
            everything
        )
    db.dispose()
