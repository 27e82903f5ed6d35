"""The JSON API: one module of routes per resource, each a blueprint under /api (or /healthz, /metrics)."""
