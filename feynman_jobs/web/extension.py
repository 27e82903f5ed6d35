"""The service's state inside a Flask app: settings and a Redis client, in app.extensions."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from redis import Redis

from feynman_jobs.queueing.connection import connect
from feynman_jobs.settings import Settings

EXTENSION_KEY = "feynman_jobs"


@dataclass(frozen=True)
class FeynmanExtension:
    """What the blueprints need: the settings and one Redis client (with its own connection pool)."""

    settings: Settings
    redis: Redis


def init_extension(app: Flask, settings: Settings, redis: Redis | None = None) -> FeynmanExtension:
    """Attach the service to `app`, on `redis` (default: a client of the settings' Redis)."""
    ext = FeynmanExtension(settings=settings, redis=redis if redis is not None else connect(settings))
    app.extensions[EXTENSION_KEY] = ext
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    return ext


def extension() -> FeynmanExtension:
    """The service state of the current app."""
    ext = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(ext, FeynmanExtension):
        raise RuntimeError("feynman_jobs is not initialised on this app: call feynman_jobs.web.init_app(app)")
    return ext
