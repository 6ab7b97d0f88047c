"""The one error the filter language raises, with a position a person can act on."""

from __future__ import annotations


class FilterError(ValueError):
    """A filter that cannot be run: what is wrong, where (1-based column), and a hint.

    ``message`` is the reason and the hint (``"unknown field 'latncy_ms' — did you mean
    'latency_ms'?"``); ``str()`` puts the column between them.
    """

    def __init__(self, reason: str, position: int, hint: str = "") -> None:
        self.reason = reason
        self.position = max(1, position)
        self.hint = hint
        self.message = f"{reason} — {hint}" if hint else reason
        super().__init__(str(self))

    def __str__(self) -> str:
        located = f"{self.reason} at column {self.position}"
        return f"{located} — {self.hint}" if self.hint else located
