"""Staff consoles: one blueprint, sign-in and the event stream in ``base``, one module a desk.

The blueprint is one (URLs and templates keep their ``console.*`` names); each role's
pages live in a module of their own (agent, specialist, designer, auditor, supervisor,
admin, traces), and every page gets what it shows from that role's read model in
``callflow.desks`` (the web layer never reads the store). Pages are server-rendered; live
panels are drawn by /console/static/console.js from the role's JSON state, refreshed
whenever the server-sent event stream (/console/events, fed by the audit log, so every
worker sees every event) says something changed. Every form carries the session's CSRF
token; every page carries strict security headers.

The desk modules import ``base`` only; this package imports them so their routes are on
the blueprint before the app registers it, and nothing imports the package back.
"""

from __future__ import annotations

from . import admin, agent, auditor, designer, specialist, supervisor, traces
from .base import DEVICE_COOKIE, SECURITY_HEADERS, bp

__all__ = [
    "DEVICE_COOKIE",
    "SECURITY_HEADERS",
    "admin",
    "agent",
    "auditor",
    "bp",
    "designer",
    "specialist",
    "supervisor",
    "traces",
]
