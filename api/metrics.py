"""Prometheus metrics of this process.

One registry per process, not prometheus_client's multi-process mode: that mode
needs a shared directory set up before the first import and cleaned between
runs, and forbids some metric types. With ``--workers N`` each worker counts its
own requests and ``/metrics`` answers from whichever worker takes the scrape, so
run one worker per container (or scrape each) when exact per-process series
matter; the counters are monotonic per worker, so rates stay meaningful.

Other modules count their crypto work with
``crypto_ops.labels(algorithm="SM2", operation="sign").inc()``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

http_requests = Counter(
    "trust_http_requests",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)

http_duration = Histogram(
    "trust_http_request_duration_seconds",
    "HTTP request latency by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

crypto_ops = Counter(
    "trust_crypto_operations",
    "Cryptographic operations by algorithm (SM2, SM3, SM4, ECDSA-P256, RSA) and operation",
    ["algorithm", "operation"],
    registry=REGISTRY,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


# The children of each label set, looked up once: ``labels()`` costs more than the count.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        labels = {"method": method, "route": route, "status": str(status)}
        children = _children[key] = (
            http_requests.labels(**labels),
            http_duration.labels(**labels),
        )
    children[0].inc()
    children[1].observe(seconds)


def render() -> bytes:
    return generate_latest(REGISTRY)
