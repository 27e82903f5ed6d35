"""feynman_jobs: background jobs for a Feynman-technique AI tutor, on RQ and Redis."""

__version__ = "0.1.0"
