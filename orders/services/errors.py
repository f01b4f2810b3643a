"""The refusals of the order services (HTTP 409), in one place so every module can raise them."""

from __future__ import annotations

from core.errors import Conflict
from orders.choices import GateVerdict


class OrderConflict(Conflict):
    """The course, dose or preparation is not in a state that allows this step (HTTP 409)."""


class DoseBlocked(OrderConflict):
    """The dose gate is not open; carries the verdict and the open findings."""

    def __init__(self, verdict: GateVerdict, reasons: list[str]) -> None:
        self.verdict = verdict
        self.reasons = reasons
        super().__init__(f"Dose {verdict.label.lower()}: " + "; ".join(reasons))
