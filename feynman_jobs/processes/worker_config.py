"""Settings module for `rq worker -c feynman_jobs.processes.worker_config`: Redis, queues, logging.

RQ reads the UPPERCASE names. Importing this module in the worker parent also means anything loaded
here is shared by every forked work horse: the embedder is built here, once per worker process.
"""

from __future__ import annotations

import importlib
import logging.config

from feynman_jobs.jobs import context
from feynman_jobs.logs import dict_config
from feynman_jobs.providers import embedders, http
from feynman_jobs.queueing.catalog import CATALOG
from feynman_jobs.queueing.connection import rq_settings
from feynman_jobs.queueing.wiring import QUEUE_NAMES
from feynman_jobs.settings import load_settings

_settings = load_settings()

# REDIS_URL, or RQ's SENTINEL dictionary: RQ's CLI reads whichever is defined (architecture §8).
globals().update(rq_settings(_settings))
QUEUES = list(QUEUE_NAMES)
DICT_CONFIG = dict_config(_settings.log_level, _settings.log_format)

# RQ applies DICT_CONFIG only after importing this module; apply it first so the embedder's load
# line (how a load is seen and counted) reaches the worker's log. RQ applying it again is harmless.
logging.config.dictConfig(DICT_CONFIG)
embedders.get_embedder(_settings)
# Jobs read the settings through jobs.context.settings(): read them here, once, not in every horse
# (reading the environment into Settings takes tens of milliseconds).
context.settings()
http.tls_context()  # loaded once here, not in every work horse or slot
# Import the job modules here too, so a work horse does not import them again for every job.
for _spec in CATALOG.values():
    importlib.import_module(_spec.func.rsplit(".", 1)[0])
