"""Log output of a serving process: one JSON object per line on stderr.

The access log (``trust.access``) already emits JSON documents and is written as
is; other ``trust.*`` records are wrapped in one. uvicorn keeps its own loggers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from trust.settings import Settings


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if record.name == "trust.access":
            return record.getMessage()
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def configure_logging(settings: Settings) -> None:
    """Send ``trust.*`` records to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger("trust")
    if not any(isinstance(h.formatter, JsonLines) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
    logger.setLevel(settings.log_level.upper())
    logger.propagate = False
