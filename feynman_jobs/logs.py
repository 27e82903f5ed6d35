"""Logging set-up, applied once per process (never at import): plain lines, or JSON lines."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: `extra=` fields never written: RQ's worker passes a failed job's arguments (a learner's words) as
#: `arguments` and `kwargs` with its error line (architecture §9).
# rq-compat(rq==3.0.0): Worker.handle_exception logs with extra={'arguments', 'kwargs'}. Remove when RQ
# stops attaching job arguments to log records.
_WITHHELD = {"arguments", "kwargs"}

_configured = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {
            key: value for key, value in vars(record).items() if key not in _STANDARD and key not in _WITHHELD
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send log records to stderr at `level`, as text or JSON lines; later calls only change the level."""
    global _configured
    if not _configured:
        handler = logging.StreamHandler()
        handler.setFormatter(_formatter(log_format))
        logging.basicConfig(level=level, handlers=[handler])
        _configured = True
    logging.getLogger("feynman_jobs").setLevel(level)


def dict_config(level: str = "INFO", log_format: str = "text") -> dict[str, object]:
    """The same set-up as a logging dictConfig, for `rq worker -c` (RQ's DICT_CONFIG)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": LOG_FORMAT}
    )
    loggers: dict[str, Any] = {"feynman_jobs": {"handlers": ["stderr"], "level": level, "propagate": False}}
    if log_format == "json":
        # RQ's own worker lines too, so a log shipper sees one format; RQ then adds no handler of its own.
        loggers["rq"] = {"handlers": ["stderr"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default"}},
        "loggers": loggers,
    }
