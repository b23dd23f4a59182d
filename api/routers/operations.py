"""Operations endpoints: liveness, readiness and Prometheus metrics (no token, not throttled)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api import metrics
from api.deps import CoordinationDep, DatabaseDep, SettingsDep, get_services
from api.errors import problem_responses
from api.security import operations
from trust.errors import ServiceUnavailable, TrustError

router = APIRouter(tags=["operations"], dependencies=[operations()])


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": {"database": "ok", "redis": "ok", "tsa_clock": "ok"},
                }
            ]
        }
    )

    status: Literal["ready"]
    checks: dict[str, str]


@router.get("/healthz", summary="Process is up", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Database (and Redis, if configured) reachable, TSA clock synchronised",
    response_model=Readiness,
    responses=problem_responses(503),
)
async def readyz(
    request: Request, settings: SettingsDep, database: DatabaseDep, coordination: CoordinationDep
) -> Readiness:
    checks: dict[str, str] = {}
    probes = {"database": database.ping}
    if settings.redis_url:
        probes["redis"] = coordination.ping
    for name, probe in probes.items():
        try:
            await run_in_threadpool(probe)
            checks[name] = "ok"
        except Exception as exc:  # a probe must report, never turn readiness into a 500
            checks[name] = exc.code if isinstance(exc, TrustError) else "unavailable"
    # The TSA answers timeNotAvailable while its clock is unsynchronised: not ready.
    synchronised = get_services(request).tsa_clock_health().synchronised()
    checks["tsa_clock"] = "ok" if synchronised else "unsynchronised"
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        raise ServiceUnavailable(f"not ready: {', '.join(failed)}", failed=failed, checks=checks)
    return Readiness(status="ready", checks=checks)


_METRICS_EXAMPLE = (
    "# HELP trust_http_requests_total HTTP requests by method, route template and status\n"
    "# TYPE trust_http_requests_total counter\n"
    'trust_http_requests_total{method="GET",route="/v1/tokens",status="200"} 3.0\n'
)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this worker process",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"example": _METRICS_EXAMPLE}}}},
)
def prometheus_metrics() -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
