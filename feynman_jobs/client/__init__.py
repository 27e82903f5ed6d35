"""A typed Python client of the feynman_jobs HTTP API (httpx; sync in `sync`, async in `aio`)."""
