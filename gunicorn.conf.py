"""Gunicorn settings shared by the Procfile (`make run`) and Docker Compose (`-c gunicorn.conf.py`).

Only the garbage collector is tuned here; bind address, workers and worker class stay on the command lines.
Why (docs/architecture.md §6, worklists p95 ≤ 150 ms; docs/benchmarks-worklists.md): a full collection walks
every tracked object, and a started worker holds ~150,000 of them (Django, DRF, the apps, compiled
templates) that live as long as the process. `gc.freeze()` moves them to the permanent generation, so a full
collection only walks what the requests allocated; a larger generation-0 threshold makes collections rarer on
pages that build thousands of short-lived objects.
"""

from __future__ import annotations

import gc
from typing import Any

GC_GEN0_THRESHOLD = 50_000  # default 700; a worklist page allocates tens of thousands of objects per request


def warm_up() -> None:
    """Import what the first request would (every URLconf and view module, the page templates), so that it
    is frozen with the rest of start-up."""
    from django.template.loader import get_template
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every app's urls and views)
    for name in (
        "orders/worklist.html",
        "specimens/collection_list.html",
        "results/review.html",
        "results/verify.html",
        "alerts/inbox.html",
    ):
        get_template(name)


def tune_gc() -> None:
    """Freeze what start-up left alive, and collect less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def post_worker_init(worker: Any) -> None:
    """In each worker, after it has loaded the application (with or without `--preload`)."""
    warm_up()
    tune_gc()
    worker.log.info("gc.freeze(): %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())
