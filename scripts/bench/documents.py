"""OFD and PDF stamping and verification of 1 MB, 10-page documents, against SM3 over the
document bytes plus one SM2 signature measured in the same run.

    .venv/bin/python scripts/bench/documents.py [--rounds 2] [--repeat 5] [--http]

Figures are milliseconds per document (best mean of --rounds, each of --repeat
operations); each round measures its reference right before:

- reference: SM3 over the whole package (``trust.sm3``) plus one SM2 signature of a
  32-byte message (``get_backend("openssl")`` private handle), one thread;
- stamp: ``stamp_ofd`` in this process: unzip with the safety limits, SM3 of every file,
  Signature.xml, one SES_Signature v4 (``seals.build`` with an in-memory SM2 key and a
  prebuilt seal: the same single SM2 signature), the package written back;
- verify: ``verify_ofd`` on the stamped package: References, dataHash, signer and maker
  signatures (two SM2 verifications), no trust anchors;
- pdf stamp / pdf verify (SM2 and ECDSA): ``stamp_pdf`` (pyHanko incremental update,
  the seal picture, PAdES signature: GM/T 0010 SignedData for SM2) by an in-memory key
  with a root and sub CA (``tests.pdf_support``), and ``verify_pdf`` with that root;
- pdf ... worker: the same in a warm bounded worker process, as the service runs them
  (``seals.documents.bounded``, ``pdf_jobs``: the PDF goes to the worker and back, the
  signature is made in this process at the worker's request);
- with --http, stamp http / verify http: ``POST /v1/documents/stamp`` (seal service, key
  store, audit; ``trustctl serve``, 1 worker, SQLite, through ``keystore_http.served``
  and the seal set up by ``seals.prepare``) and ``POST /v1/documents/verify`` (the
  service's seal verifier: paths, revocation, registry), one keep-alive client on the
  same host. Off by default: setting the server up takes a minute or two of trustctl
  runs on a loaded machine.

Target: OFD stamp <= 3x reference (issue 9); the other figures are for information (the
HTTP ones carry the upload, multipart parsing, the key store, the audit records and the
response on top). The reference uses the OFD package's bytes for every row.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.keystore_http import served  # noqa: E402
from scripts.bench.seals import prepare  # noqa: E402
from seals.documents.bounded import WorkerLimits, WorkerPool  # noqa: E402
from seals.documents.ofd_sign import Placement, Rect, stamp_ofd  # noqa: E402
from seals.documents.ofd_verify import verify_ofd  # noqa: E402
from seals.documents.pdf_appearance import Placement as PdfPlacement  # noqa: E402
from seals.documents.pdf_io import DEFAULT_MAX_PDF_BYTES  # noqa: E402
from seals.documents.pdf_jobs import SIGN, StampJob, stamp_job, verify_job  # noqa: E402
from seals.documents.pdf_stamp import StampOptions, stamp_pdf  # noqa: E402
from seals.documents.pdf_verify import PdfSignatureReport, verify_pdf  # noqa: E402
from tests.ofd_support import make_ofd, seal_signer  # noqa: E402
from tests.pdf_support import make_pdf, make_seal  # noqa: E402
from tests.pdf_support import seal_signer as pdf_seal_signer  # noqa: E402
from tests.seals_helpers import identity  # noqa: E402
from trust.keys import KeyAlgorithm  # noqa: E402
from trust.sm2.select import get_backend  # noqa: E402
from trust.sm3 import sm3  # noqa: E402

PAGES = 10
SIZE = 1 << 20
TARGET = 3.0
MESSAGE = b"k" * 32


def per_op(op: Callable[[], object], repeat: int) -> float:
    """Mean milliseconds per call over ``repeat`` calls, after one warm-up call."""
    op()
    start = time.perf_counter()
    for _ in range(repeat):
        op()
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--http", action="store_true", help="also over HTTP (slow set-up)")
    args = parser.parse_args()

    document = make_ofd(PAGES, SIZE - 4096)
    handle = get_backend("openssl").generate()
    seal_signature = seal_signer(identity("bench maker"), identity("bench signer"))
    placement = Placement(1, Rect(120, 200, 40, 40))
    stamped = stamp_ofd(document, seal_signature=seal_signature, placement=placement)
    if verify_ofd(stamped).indication.value != "TOTAL_PASSED":
        raise SystemExit("the stamped document does not verify")

    def reference() -> None:
        sm3(document)
        handle.sign(MESSAGE)

    pool = WorkerPool(1)
    runs: dict[str, Callable[[], object]] = {
        "stamp": lambda: stamp_ofd(document, seal_signature=seal_signature, placement=placement),
        "verify": lambda: verify_ofd(stamped),
        **_pdf(KeyAlgorithm.SM2, pool),
        **_pdf(KeyAlgorithm.ECDSA_P256, pool),
    }
    http = _http(document) if args.http else None
    if http is not None:
        runs.update(http[0])
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.rounds):
            for name, op in runs.items():
                ref = per_op(reference, args.repeat * 5)
                measured = per_op(op, args.repeat)
                if name not in best or measured / ref < best[name][1] / best[name][0]:
                    best[name] = (ref, measured)
    finally:
        pool.close()
        if http is not None:
            http[1]()

    print(f"{PAGES} pages, OFD package {len(document) / 2**20:.2f} MiB, PDF about 1 MiB; "
          f"{args.rounds} rounds of {args.repeat}; ms per document")  # fmt: skip
    print(f"{'':22}{'reference':>10}{'ms':>9}{'ratio':>8}")
    for name, (ref, measured) in best.items():
        target = f"  target <= {TARGET:g}x: " + ("ok" if measured / ref <= TARGET else "MISSED")
        print(
            f"{name:22}{ref:>10.2f}{measured:>9.2f}{measured / ref:>8.2f}"
            + (target if name == "stamp" else "")
        )


def _pdf(algorithm: KeyAlgorithm, pool: WorkerPool) -> dict[str, Callable[[], object]]:
    pdf = make_pdf(PAGES, size=SIZE)
    signer = pdf_seal_signer(algorithm, "Bench")
    seal, where = make_seal(), PdfPlacement(1, 120, 200)
    options = StampOptions(chain=signer.chain)
    limits = WorkerLimits(seconds=60)
    job = StampJob(
        algorithm=algorithm,
        certificate=signer.signer.certificate.dump(),
        chain=tuple(c.dump() for c in signer.chain),
        seal=seal,
        placement=where,
        timestamp=False,
        now=datetime.now(UTC),
        max_bytes=DEFAULT_MAX_PDF_BYTES,
    )
    # The worker verifies against the root only: the sub CA is in the CMS.
    anchors = (signer.root.dump(),)

    def stamp() -> bytes:
        return stamp_pdf(pdf, signer.signer, seal, where, options).pdf

    def stamp_in_worker() -> bytes:
        return pool.run(stamp_job, (pdf, job), limits, calls={SIGN: signer.signer.sign}).pdf

    stamped = stamp()

    def check(reports: Sequence[PdfSignatureReport]) -> None:
        (report,) = reports
        if report.report.indication.value != "TOTAL_PASSED":
            raise SystemExit(f"the stamped PDF does not verify: {report.report.checks}")

    def verify() -> None:
        check(verify_pdf(stamped, anchors=[signer.root], intermediates=signer.chain))

    def verify_in_worker() -> None:
        now = datetime.now(UTC)
        check(pool.run(verify_job, (stamped, anchors, now, DEFAULT_MAX_PDF_BYTES), limits))

    verify()
    verify_in_worker()
    name = "sm2" if algorithm is KeyAlgorithm.SM2 else "ecdsa"
    return {
        f"pdf stamp {name}": stamp,
        f"pdf stamp {name} worker": stamp_in_worker,
        f"pdf verify {name}": verify,
        f"pdf verify {name} worker": verify_in_worker,
    }


def _http(document: bytes) -> tuple[dict[str, Callable[[], object]], Callable[[], None]]:
    """The HTTP operations against a fresh server, and how to stop it."""
    tmp = tempfile.TemporaryDirectory()
    var = Path(tmp.name) / "var"
    server = served(var)
    base, _, key_id = server.__enter__()
    signer_id, esid, token = prepare(var, key_id)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    form = {"seal_id": esid, "signer": signer_id, "x": "120", "y": "200"}

    def stamp() -> bytes:
        r = client.post("/v1/documents/stamp", data=form, files={"file": ("a.ofd", document)})
        if r.status_code != 200:
            raise SystemExit(f"stamp: {r.status_code} {r.text}")
        return r.content

    stamped = stamp()

    def verify() -> None:
        r = client.post("/v1/documents/verify", files={"file": ("a.ofd", stamped)})
        if r.status_code != 200 or r.json()["indication"] != "TOTAL_PASSED":
            raise SystemExit(f"verify: {r.status_code} {r.text[:2000]}")

    def stop() -> None:
        client.close()
        server.__exit__(None, None, None)
        tmp.cleanup()

    return {"stamp http": stamp, "verify http": verify}, stop


if __name__ == "__main__":
    main()
