"""Jobs into RQ: JSON job and queue classes, the catalog, payloads, requests, planning, the writer."""
