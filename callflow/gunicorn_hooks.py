"""gunicorn's server hooks for the service: ``gunicorn -c python:callflow.gunicorn_hooks``
(the Procfile's web line and ``callflow serve`` pass it).

A worker loads the web app once and keeps what it built for its whole life: every module
(the engine, the consoles, the sandbox the publish gate and the softphone play in), the
flows and their machines, the service. Python's cyclic garbage collector would scan all of
it again on every full collection, and full collections come round on the hot path as
requests allocate. ``gc.freeze()`` once the app is loaded moves that permanent heap out of
the collector's sight, so a collection scans only what requests create (bench/README.md
has the figures).
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["post_worker_init"]


def post_worker_init(worker: Any) -> None:
    """After a worker has loaded the app: collect once, then freeze what is left."""
    gc.collect()
    gc.freeze()
