"""Logging and request ids: every log line can say which request it serves.

``REQUEST_ID`` holds the id of the request (in the API) or of the request that
created the task (in a worker); a logging filter puts it on every record, and
the JSON format (``AEROVISION_LOG_FORMAT=json``) writes one object per line.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str | None] = ContextVar("aerovision_request_id", default=None)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_ESCAPES = {
    c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]
} | {0x2028: "\\u2028", 0x2029: "\\u2029"}


def printable(text: str) -> str:
    """``text`` with control characters (C0, DEL, C1, line separators) as ``\\xNN``:
    one log record stays one line, and no client text can move a terminal's cursor."""
    return text.translate(_ESCAPES)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(request_id)s]: %(message)s"


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-Id`` if it is sane (≤ 128 of ``A-Za-z0-9._:-``), else a new one."""
    if header and _VALID_ID.match(header):
        return header
    return uuid.uuid4().hex


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class TextFormatter(logging.Formatter):
    """The text format, with the message escaped by :func:`printable` (a traceback,
    appended after it, keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process, request_id, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": record.processName,
            "request_id": getattr(record, "request_id", None),
            "message": printable(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text") -> None:
    """Root logging for a process: level, text or JSON, request ids on every record."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log redacts keys
