"""Waiting for a condition with a deadline: shared by the end-to-end tests (tests/stack.py) and the web
benchmarks (benchmarks/_web.py). Standard library only, so a benchmark can import it before Django is set up."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float, what: str = "condition", interval: float = 0.2) -> object:
    """`condition()`'s first truthy value, polled every `interval` s; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not met within {timeout:g} s")
