"""The app factory: builds the FastAPI application from a Settings object."""

from __future__ import annotations

from fastapi import FastAPI

from trust.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Trust service",
        version="0.1.0",
        description=(
            "Identity certificates, electronic seals and trusted timestamps with the "
            "SM2/SM3/SM4 national algorithms."
        ),
    )
    app.state.settings = settings

    @app.get("/healthz", tags=["operations"], summary="Process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
