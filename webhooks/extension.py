"""How views reach the process's :class:`~callflow.service.Callflow`."""

from __future__ import annotations

from flask import current_app

from callflow.service import Callflow

EXTENSION_KEY = "callflow"


def service() -> Callflow:
    """The callflow service of the current app."""
    svc: Callflow = current_app.extensions[EXTENSION_KEY]
    return svc
