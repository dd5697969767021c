"""A finding: one thing checked, whether it holds, what was seen and how to fix it.

The preflight steps, the backup-bucket check and `mwaa-iac doctor` all report findings; the CLI
renders them (✓ / ✗ / !). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """``ok`` False with ``blocking`` True fails the check (✗); with ``blocking`` False it is a
    warning (!) that does not."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    blocking: bool = True

    @property
    def failed(self) -> bool:
        return not self.ok and self.blocking

    @property
    def mark(self) -> str:
        return "✓" if self.ok else ("✗" if self.blocking else "!")

    def text(self) -> str:
        return f"{self.name}: {self.detail}" + (f" (fix: {self.fix})" if self.fix and not self.ok else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "ok": self.ok,
            "blocking": self.blocking,
            "detail": self.detail,
            "fix": self.fix,
        }
