"""What of a provider's error answer is kept in an error (and so in logs): its shape, never its text.

An error body can echo the prompt (a learner's words) or part of a key, and RQ logs every failure's
message with its traceback; so only the error's `type` and `code` of an OpenAI-style JSON error
survive, or the body's size and media type (architecture §9).
"""

from __future__ import annotations

import re

import httpx

#: Characters kept of an error's type or code (they are short words such as `invalid_request_error`).
FIELD_CHARS = 60
_WORD = re.compile(r"^[A-Za-z0-9_.:-]+$")


def error_summary(response: httpx.Response) -> str:
    """`error invalid_request_error/context_length_exceeded`, or `a 512-byte text/html body`."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        parts = [
            str(error[name])[:FIELD_CHARS]
            for name in ("type", "code")
            if isinstance(error.get(name), str | int) and _WORD.match(str(error[name]))
        ]
        if parts:
            return "error " + "/".join(parts)
    media = response.headers.get("Content-Type", "").split(";")[0].strip() or "untyped"
    return f"a {len(response.content)}-byte {media} body"
