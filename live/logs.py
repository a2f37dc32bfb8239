"""Structured logs for the runner: human lines by default, one JSON object per line with `--json-logs`.

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
    """Attach one handler to the runner's logger (idempotent: replaces the one set up before)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else TextFormatter())
    handler.set_name("aiotrade-live")
    for h in list(log.handlers):
        if h.get_name() == "aiotrade-live":
            log.removeHandler(h)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return handler
