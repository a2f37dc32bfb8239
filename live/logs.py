"""Structured logs for the runner: human lines by default, one JSON object per line with `--json-logs`.

`setup_logging` formats the runner's logger (`aiotrade.live`, at the level asked) and, at WARNING, every
other logger of the process (the venue adapter's `aiotrade.exchange`, `core`, third-party libraries)
through the root logger: each record is written once, and a JSON log stays one JSON object per line.

Every record the runner emits carries an `event` name and fields (`pair`, `bar_ts`, `client_id`, ...)
passed as `extra={"fields": {...}}` through `log_event`, so a log shipper can index them. Secrets never
reach a log: credentials are masked objects (`core.secrets`) and no request bodies are logged here.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "aiotrade.live"
HANDLER_NAME = "aiotrade-live"
log = logging.getLogger(LOGGER_NAME)


def log_event(level: int, event: str, message: str, **fields: Any) -> None:
    log.log(level, message, extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += "  " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return line


def setup_logging(json_logs: bool, level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """Attach the handler to the runner's logger, and one with the same format and stream at WARNING
    to the root logger for everything else (idempotent: replaces the ones set up before). Returns the
    runner logger's handler."""
    out = stream or sys.stderr
    fmt = JsonFormatter() if json_logs else TextFormatter()
    handler = _install(log, logging.StreamHandler(out), fmt)
    log.setLevel(level)
    log.propagate = False  # the root's handler would write the runner's records a second time
    others = _install(logging.getLogger(), logging.StreamHandler(out), fmt)
    others.setLevel(logging.WARNING)
    return handler


def _install(logger: logging.Logger, handler: logging.Handler, fmt: logging.Formatter) -> logging.Handler:
    handler.setFormatter(fmt)
    handler.set_name(HANDLER_NAME)
    for h in list(logger.handlers):
        if h.get_name() == HANDLER_NAME:
            logger.removeHandler(h)
    logger.addHandler(handler)
    return handler
