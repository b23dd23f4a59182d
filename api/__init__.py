"""HTTP API (FastAPI) and the trustctl command line."""
