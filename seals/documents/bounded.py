"""Work on untrusted documents in child processes, bounded in time and memory.

pyHanko parses PDFs in pure Python: a crafted file under the size limit (a catalog holding
a 4 MB array) kept a thread busy for ~90 s, and nothing inside a thread can stop it. So the
parsing runs in a small pool of warm worker processes (``forkserver``: forked from a server
that has already imported the job module, without the parent's threads, sockets or key
material). Each job gets a wall-clock bound, enforced by the parent killing the worker,
and an address-space bound (``RLIMIT_AS``) set in the worker for the job; either one
exceeded is ``DocumentTooComplex`` (422) and the worker is replaced.

A job may call back into the parent by name (``call_parent``) for what must stay there:
the key store's signature and the TSA's token. The parent answers only the callbacks the
caller offered, each at most once per job (one signature per stamp, whatever the worker
asks), and the time spent in them is not charged to the job.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

from trust.errors import BackendError, DocumentTooComplex, TrustError
from trust.settings import Settings

_T = TypeVar("_T")
Callback = Callable[..., object]

# The module every worker imports before forking (pyHanko and the jobs), once per server.
_PRELOAD = ["seals.documents.pdf_jobs"]
_JOIN_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerLimits:
    seconds: float = 5.0  # wall-clock time of the job, callbacks not counted
    memory_bytes: int = 1 << 30  # address space of the worker process during the job

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerLimits:
        return cls(settings.document_pdf_seconds, settings.document_pdf_memory_mb << 20)


class _Broken(Exception):
    """The worker cannot be reused; ``error`` is what the caller gets."""

    def __init__(self, error: TrustError) -> None:
        super().__init__(error.detail)
        self.error = error


class _Worker:
    def __init__(self, context: Any) -> None:
        parent, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child,), daemon=True, name="trust-document-worker"
        )
        self.process.start()
        child.close()
        self.conn: Connection = parent

    def kill(self) -> None:
        self.process.kill()
        self.process.join(_JOIN_SECONDS)
        self.conn.close()


class WorkerPool:
    """Up to ``size`` worker processes, started on first use and kept warm; a caller
    beyond ``size`` waits for a free one (which also bounds the CPU hostile input gets)."""

    def __init__(self, size: int) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def run(
        self,
        job: Callable[..., _T],
        args: tuple[object, ...],
        limits: WorkerLimits,
        *,
        calls: Mapping[str, Callback] | None = None,
    ) -> _T:
        """``job(*args)`` in a worker; its ``TrustError`` is raised here as it was there."""
        with self._worker() as worker:
            try:
                return cast(_T, _exchange(worker.conn, job, args, limits, calls or {}))
            except _Broken as broken:
                worker.kill()
                raise broken.error from None
            except BaseException:
                worker.kill()  # a callback's own failure: the job is abandoned mid-way
                raise

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    @contextmanager
    def _worker(self) -> Iterator[_Worker]:
        with self._slots:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.process.is_alive():
                worker = _Worker(self._context)
            try:
                yield worker
            finally:
                if worker.process.is_alive() and not worker.conn.closed:
                    with self._lock:
                        self._idle.append(worker)


def _exchange(
    conn: Connection,
    job: Callable[..., object],
    args: tuple[object, ...],
    limits: WorkerLimits,
    calls: Mapping[str, Callback],
) -> object:
    conn.send((job, args, limits.memory_bytes))
    deadline = time.monotonic() + limits.seconds
    made: set[str] = set()
    raised: TrustError | None = None  # a callback's error, re-raised as it was
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not conn.poll(remaining):
            raise _Broken(
                DocumentTooComplex(
                    f"processing the document takes longer than {limits.seconds:g} s"
                )
            )
        try:
            message = conn.recv()
        except (EOFError, OSError):
            raise _Broken(DocumentTooComplex("the document worker ended during the job")) from None
        kind = message[0]
        if kind == "done":
            return message[1]
        if kind == "error":
            _, cls, detail, extra = message
            if raised is not None and type(raised) is cls:
                raise raised
            raise cls(detail, **extra)
        if kind == "memory":
            raise _Broken(
                DocumentTooComplex(
                    f"processing the document needs more than {limits.memory_bytes >> 20} MiB"
                )
            )
        if kind == "failed":
            raise _Broken(BackendError(f"the document worker failed: {message[1]}"))
        # ("call", name, args)
        _, name, call_args = message
        callback = calls.get(name)
        if callback is None or name in made:
            raise _Broken(BackendError(f"the document worker made an unexpected call {name!r}"))
        made.add(name)
        started = time.monotonic()
        try:
            conn.send(("result", callback(*call_args)))
        except TrustError as exc:
            raised = exc
            conn.send(("error", type(exc), exc.detail, exc.extra))
        finally:
            deadline += time.monotonic() - started


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def shared_pool(size: int) -> WorkerPool:
    """The process's one pool (sized by its first user): every app and service in a
    process shares its warm workers instead of each starting its own."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WorkerPool(size)
        return _shared


# --- in the worker process -------------------------------------------------------------

_parent: Connection | None = None


def call_parent(name: str, *args: object) -> object:
    """From inside a job: the parent's callback ``name`` applied to ``args``."""
    if _parent is None:
        raise BackendError("call_parent outside a document worker")
    _parent.send(("call", name, args))
    reply = _parent.recv()
    if reply[0] == "error":
        _, cls, detail, extra = reply
        raise cls(detail, **extra)
    return reply[1]


def _serve(conn: Connection) -> None:
    global _parent
    _parent = conn
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        try:
            job, args, memory = conn.recv()
        except (EOFError, OSError):
            return
        cap = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
        outcome: tuple[object, ...]
        try:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
            outcome = ("done", job(*args))
        except TrustError as exc:
            outcome = ("error", type(exc), exc.detail, exc.extra)
        except MemoryError:
            outcome = ("memory",)
        except Exception as exc:  # a bug, not the input: reported, worker replaced
            outcome = ("failed", f"{type(exc).__name__}: {exc}"[:300])
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        conn.send(outcome)
