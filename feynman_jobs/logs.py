"""Logging set-up, applied once per process (never at import)."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_configured = False


def configure_logging(level: str = "INFO") -> None:
    """Send log records to stderr at `level`; later calls only change the level."""
    global _configured
    if not _configured:
        logging.basicConfig(level=level, format=LOG_FORMAT)
        _configured = True
    logging.getLogger("feynman_jobs").setLevel(level)


def dict_config(level: str = "INFO") -> dict[str, object]:
    """The same set-up as a logging dictConfig, for `rq worker -c` (RQ's DICT_CONFIG)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "loggers": {"feynman_jobs": {"handlers": ["stderr"], "level": level, "propagate": False}},
    }
