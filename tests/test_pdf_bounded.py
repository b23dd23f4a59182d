"""PDF work in bounded worker processes: a crafted PDF that keeps pyHanko busy for seconds
is refused within the time bound (document_too_complex, never a 500), memory beyond the
bound likewise, and a worker may ask the parent only for the callbacks it was offered,
once each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seals.documents.bounded import WorkerLimits, WorkerPool, call_parent
from seals.documents.service import DocumentService
from tests.api_support import make_env
from tests.pdf_support import crafted_pdf, make_pdf
from tests.test_api_platform import assert_problem
from trust.clock import FakeClock
from trust.errors import BackendError, DocumentTooComplex, NotFound, PdfMalformed

# Unbounded, pyHanko needs ~8 s for this on the shared machine (~7 µs per byte).
CRAFTED_ARRAY = 1 << 20
BOUND = 1.0
# Worker start-up is not part of the bound the test checks (the pool is warmed first).
SLACK = 1.5
# For tests not about time: a fresh worker first imports this module (the jobs below),
# which takes seconds on the loaded shared machine; production jobs are preloaded.
AMPLE = WorkerLimits(seconds=60)


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(2)
    yield workers
    workers.close()


class _NoAudit:
    """Verification writes no audit record; stamping is not used here."""

    def append(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("nothing to audit")


def _service() -> DocumentService:
    def no_seals() -> object:
        raise AssertionError("verification needs no seal service")

    return DocumentService(
        no_seals,  # type: ignore[arg-type]
        no_seals,  # type: ignore[arg-type]
        FakeClock(),
        _NoAudit(),
        pdf_limits=WorkerLimits(seconds=BOUND),
    )


def test_crafted_pdf_is_refused_within_the_time_bound() -> None:
    service = _service()
    assert service.verify(make_pdf(1)).signatures == ()  # warms the process's shared pool
    started = time.monotonic()
    with pytest.raises(DocumentTooComplex, match="longer than 1 s"):
        service.verify(crafted_pdf(CRAFTED_ARRAY))
    assert time.monotonic() - started < BOUND + SLACK
    # The killed worker is replaced: the next document is served normally.
    assert service.verify(make_pdf(2)).signatures == ()


def test_parse_errors_cross_the_process_boundary_as_they_were() -> None:
    with pytest.raises(PdfMalformed):
        _service().verify(b"%PDF-1.7\n" + bytes(300))


def _allocate(size: int) -> int:
    return len(bytearray(size))


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def _ask(*names: str) -> list[object]:
    return [call_parent(name, name) for name in names]


def _raise_not_found() -> None:
    raise NotFound("nothing here", item="x")


def test_memory_beyond_the_bound_is_too_complex(pool: WorkerPool) -> None:
    limits = WorkerLimits(seconds=60, memory_bytes=512 << 20)
    assert pool.run(_allocate, (16 << 20,), limits) == 16 << 20
    with pytest.raises(DocumentTooComplex, match="more than 512 MiB"):
        pool.run(_allocate, (1 << 30,), limits)
    # The limit is the job's: the same worker pool allocates within it again.
    assert pool.run(_allocate, (16 << 20,), limits) == 16 << 20


def test_time_in_callbacks_is_not_charged_to_the_job(pool: WorkerPool) -> None:
    def slow(value: object) -> object:
        time.sleep(0.6)
        return value

    assert pool.run(_sleep, (0.0,), AMPLE) == "slept"  # this module imported in the worker
    limits = WorkerLimits(seconds=0.5)
    assert pool.run(_ask, ("sign",), limits, calls={"sign": slow}) == ["sign"]
    with pytest.raises(DocumentTooComplex):
        pool.run(_sleep, (5.0,), limits)


def test_a_worker_gets_only_the_offered_callbacks_once_each(pool: WorkerPool) -> None:
    limits = AMPLE
    calls = {"sign": lambda v: f"signed {v}", "timestamp": lambda v: f"token {v}"}
    assert pool.run(_ask, ("sign", "timestamp"), limits, calls=calls) == [
        "signed sign",
        "token timestamp",
    ]
    with pytest.raises(BackendError, match="unexpected call 'sign'"):
        pool.run(_ask, ("sign", "sign"), limits, calls=calls)
    with pytest.raises(BackendError, match="unexpected call 'decrypt'"):
        pool.run(_ask, ("decrypt",), limits, calls=calls)


def test_errors_keep_their_class_detail_and_extra(pool: WorkerPool) -> None:
    with pytest.raises(NotFound) as raised:
        pool.run(_raise_not_found, (), AMPLE)
    assert raised.value.detail == "nothing here" and raised.value.extra == {"item": "x"}

    refusal = NotFound("no such key")

    def refuse(_: object) -> object:
        raise refusal

    with pytest.raises(NotFound) as from_callback:
        pool.run(_ask, ("sign",), AMPLE, calls={"sign": refuse})
    assert from_callback.value is refusal


def test_crafted_pdf_over_http_is_a_422_in_bounded_time(tmp_path: Path) -> None:
    env = make_env(tmp_path, document_pdf_seconds=BOUND)
    files = {"file": ("a.pdf", make_pdf(1))}
    assert env.client.post("/v1/documents/verify", files=files).status_code == 200  # warm
    started = time.monotonic()
    r = env.client.post("/v1/documents/verify", files={"file": ("a.pdf", crafted_pdf(1 << 20))})
    assert_problem(r, 422, "document_too_complex")
    assert time.monotonic() - started < BOUND + SLACK
