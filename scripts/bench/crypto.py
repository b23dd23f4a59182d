"""Crypto throughput on one core, each figure next to `openssl speed` measured in the same run.

    .venv/bin/python scripts/bench/crypto.py [--seconds 1] [--rounds 5] [--cpu N]

SM2 sign/verify of a 20-byte message with the default ID (what `openssl speed
sm2` does), SM2 encrypt/decrypt of 32 bytes (a wrapped SM4 key; `openssl
speed` has no SM2 encryption figure), SM3 and SM4-GCM on 1 MiB buffers.

The process and its `openssl speed` children are pinned to one CPU. Rates are
per second of user CPU time, as `openssl speed` counts them by default, so
that other processes on a shared machine do not skew one side. Each figure is
the best of --rounds rounds, and every round runs the openssl reference right
before the Python measurement.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from trust.sm2.backend import SM2PrivateHandle  # noqa: E402
from trust.sm2.select import get_backend  # noqa: E402
from trust.sm3 import sm3  # noqa: E402
from trust.sm4 import gcm_encrypt  # noqa: E402

MIB = 1 << 20


def _user_cpu() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def rate(op: Callable[[], object], seconds: float, max_ops: int | None = None) -> float:
    """Operations per second of user CPU time, running ``op`` for ``seconds`` of wall-clock
    time (or ``max_ops`` times): the same accounting as `openssl speed` without -elapsed."""
    op()  # warm-up: per-thread contexts are created on first use
    count = 0
    cpu_start = _user_cpu()
    deadline = time.perf_counter() + seconds
    while True:
        op()
        count += 1
        if (max_ops is not None and count >= max_ops) or time.perf_counter() >= deadline:
            break
    return count / max(_user_cpu() - cpu_start, 1e-6)


def openssl_speed(*args: str) -> str:
    res = subprocess.run(
        ["openssl", "speed", "-mr", *args], capture_output=True, text=True, timeout=600
    )
    if res.returncode != 0:
        raise RuntimeError(f"openssl speed {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def openssl_sm2(seconds: int) -> tuple[float, float]:
    """(sign/s, verify/s) from `openssl speed sm2`."""
    out = openssl_speed("-seconds", str(seconds), "sm2")
    m = re.search(r"^\+F7:\d+:256:[^:]*:([\d.]+):([\d.]+)", out, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"unexpected openssl speed sm2 output: {out!r}")
    return float(m[1]), float(m[2])


def openssl_evp_mbps(alg: str, seconds: int) -> float | None:
    """MB/s (10^6 bytes) on 1 MiB buffers from `openssl speed -evp alg`; None if unsupported."""
    try:
        out = openssl_speed("-seconds", str(seconds), "-bytes", str(MIB), "-evp", alg)
    except RuntimeError:
        return None
    m = re.search(r"^\+F:\d+:[^:]*:([\d.]+)", out, re.MULTILINE)
    return float(m[1]) / 1e6 if m else None


def row(what: str, ours: float, ref: float | None, ref_label: str = "") -> None:
    ratio = f"{ours / ref:6.2f}" if ref else "   n/a"
    ref_text = f"{ref:12.1f}" if ref else f"{'n/a':>12}"
    print(f"{what:<36} {ours:12.1f} {ref_text} {ratio}   {ref_label}", flush=True)


def bench_sm2_openssl(key: SM2PrivateHandle, seconds: int, rounds: int) -> tuple[float, float]:
    """Sign/verify rates of the OpenSSL engine; returns the `openssl speed` (sign, verify)."""
    message = os.urandom(20)
    public = key.public_handle()
    sig = key.sign(message)
    ref_sign = ref_verify = ours_sign = ours_verify = 0.0
    for _ in range(rounds):
        s, v = openssl_sm2(seconds)
        ref_sign, ref_verify = max(ref_sign, s), max(ref_verify, v)
        ours_sign = max(ours_sign, rate(lambda: key.sign(message), seconds))
        ours_verify = max(ours_verify, rate(lambda: public.verify(message, sig), seconds))
    row("SM2 sign/s [openssl]", ours_sign, ref_sign, "speed sm2")
    row("SM2 verify/s [openssl]", ours_verify, ref_verify, "speed sm2")
    return ref_sign, ref_verify


def bench_sm2_other(
    name: str,
    key: SM2PrivateHandle,
    seconds: int,
    max_ops: int | None,
    refs: tuple[float, float] | None = None,
) -> None:
    """Encrypt/decrypt rates, plus sign/verify against ``refs`` when given."""
    message, plaintext = os.urandom(20), os.urandom(32)
    public = key.public_handle()
    sig, ct = key.sign(message), public.encrypt(plaintext)
    if refs is not None:
        sign = rate(lambda: key.sign(message), seconds, max_ops)
        verify = rate(lambda: public.verify(message, sig), seconds, max_ops)
        row(f"SM2 sign/s [{name}]", sign, refs[0], "speed sm2")
        row(f"SM2 verify/s [{name}]", verify, refs[1], "speed sm2")
    row(f"SM2 encrypt/s [{name}]", rate(lambda: public.encrypt(plaintext), seconds, max_ops), None)
    row(f"SM2 decrypt/s [{name}]", rate(lambda: key.decrypt(ct), seconds, max_ops), None)


def bench_bulk(seconds: int, rounds: int) -> None:
    buf = os.urandom(MIB)
    key, nonce = os.urandom(16), os.urandom(12)
    sm4_alg = "sm4-gcm" if openssl_evp_mbps("sm4-gcm", 1) is not None else "sm4-cbc"
    ref_sm3 = ref_sm4 = ours_sm3 = ours_sm4 = 0.0
    for _ in range(rounds):
        ref_sm3 = max(ref_sm3, openssl_evp_mbps("sm3", seconds) or 0.0)
        ours_sm3 = max(ours_sm3, rate(lambda: sm3(buf), seconds) * MIB / 1e6)
        ref_sm4 = max(ref_sm4, openssl_evp_mbps(sm4_alg, seconds) or 0.0)
        ours_sm4 = max(ours_sm4, rate(lambda: gcm_encrypt(key, nonce, buf), seconds) * MIB / 1e6)
    row("SM3 MB/s, 1 MiB [cryptography]", ours_sm3, ref_sm3, "speed -evp sm3")
    note = "" if sm4_alg == "sm4-gcm" else " (this openssl has no SM4-GCM)"
    row("SM4-GCM MB/s, 1 MiB [cryptography]", ours_sm4, ref_sm4, f"speed -evp {sm4_alg}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=1, help="per measurement (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="best of N rounds (default 5)")
    parser.add_argument("--pure-iterations", type=int, default=10, help="ops per pure figure")
    parser.add_argument("--cpu", type=int, help="CPU to pin to (default: last allowed CPU)")
    args = parser.parse_args()

    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # inherited by the openssl speed children
    print(
        f"one core (CPU {cpu}); best of {args.rounds} x {args.seconds} s; "
        "ratio = ours / openssl speed, same run\n"
    )
    print(f"{'operation':<36} {'ours':>12} {'openssl':>12} {'ratio':>6}")
    key = get_backend("openssl").generate()
    refs = bench_sm2_openssl(key, args.seconds, args.rounds)
    bench_sm2_other("openssl", key, args.seconds, None)
    pure_key = get_backend("pure").generate()
    bench_sm2_other("pure", pure_key, args.seconds, args.pure_iterations, refs)
    bench_bulk(args.seconds, args.rounds)


if __name__ == "__main__":
    main()
