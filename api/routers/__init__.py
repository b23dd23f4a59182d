"""One router per domain, mounted under /v1 by the app factory."""
