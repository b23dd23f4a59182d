"""ASGI entry point for uvicorn workers: ``api.asgi:app``."""

from api.app import create_app
from api.logs import configure_logging
from trust.settings import get_settings

configure_logging(get_settings())
app = create_app()
