"""What a `feynman-jobs doctor` check returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Finding:
    """One check's verdict: `ok`, and a line saying what was seen (and what to do when not ok).

    A finding that is not ok is a failure (doctor exits 1) unless its severity is `warn`.
    """

    check: str
    ok: bool
    detail: str
    severity: Literal["fail", "warn"] = "fail"

    @property
    def label(self) -> str:
        """`ok`, `WARN` or `FAIL`, as doctor prints it."""
        return "ok" if self.ok else "WARN" if self.severity == "warn" else "FAIL"

    @property
    def failed(self) -> bool:
        """Not ok, and not merely a warning."""
        return not self.ok and self.severity == "fail"
