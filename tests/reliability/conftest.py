"""A fresh deployment per reliability test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Redis (append-only), gunicorn, no workers yet; the test adds what it needs."""
    deployment = Stack(tmp_path)
    try:
        deployment.start_web()
        yield deployment
    finally:
        deployment.close()
