"""Settings module for `rq worker -c feynman_jobs.worker_config`: our Redis, queues and logging.

RQ reads the UPPERCASE names. Importing this module in the worker parent also means anything loaded
here is shared by every forked work horse.
"""

from __future__ import annotations

from feynman_jobs.logs import dict_config
from feynman_jobs.queues import QUEUE_NAMES
from feynman_jobs.settings import load_settings

_settings = load_settings()

REDIS_URL = _settings.redis_url
QUEUES = list(QUEUE_NAMES)
DICT_CONFIG = dict_config(_settings.log_level, _settings.log_format)
