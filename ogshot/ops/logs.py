"""Logging: readable text by default, or one JSON object per line (``OGSHOT_LOG_FORMAT=json``) for
log pipelines: one line per request (see telemetry.py) and one per lifecycle event (browser
start, restart and recycle, cache degraded and recovered, Redis down and back, shutdown).

Configured by the app itself, so that every worker process logs the same way whatever started it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import sys
import time
from typing import Any

__all__ = ["REQUEST_ID", "JsonFormatter", "configure", "new_request_id", "request_id_from"]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("ogshot_request_id", default="")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def new_request_id() -> str:
    # An id to find a request's log lines by, not a secret: the Mersenne Twister is ~1 us faster
    # per request than the os.urandom system call behind secrets.
    return f"{random.getrandbits(64):016x}"


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a sane token (no spaces or control characters,
    at most 128 characters: it is echoed in a header and written to logs), else a new one."""
    if header and _VALID_ID.match(header):
        return header
    return new_request_id()


class JsonFormatter(logging.Formatter):
    """A record -> one line of JSON: time, level, logger, message, the request id, and the
    record's ``event`` and ``fields`` extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event:
            out["event"] = event
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        request_id = REQUEST_ID.get()
        if request_id and "request_id" not in out:
            out["request_id"] = request_id
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _utc(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


def configure(fmt: str) -> None:
    """ogshot's loggers (and uvicorn's, in JSON) write to stderr in ``fmt``; idempotent."""
    formatter: logging.Formatter = (
        JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    )
    # uvicorn.error propagates to uvicorn, whose own handler is replaced in JSON.
    names = ["ogshot", "uvicorn"] if fmt == "json" else ["ogshot"]
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, "ogshot", False) or name == "uvicorn":
                logger.removeHandler(handler)
        handler = logging.StreamHandler(sys.stderr)
        handler.ogshot = True  # type: ignore[attr-defined]
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
