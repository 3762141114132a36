"""Built-in guards and actions; importing this package registers them.

Each module documents its guards and actions for designers (see docs/flows.md).
"""

from ..registry import REGISTRY, Registry
from . import agents, callbacks, checks, common, meetings, specialist, vstrs

__all__ = [
    "agents",
    "builtin_registry",
    "callbacks",
    "checks",
    "common",
    "meetings",
    "specialist",
    "vstrs",
]


def builtin_registry() -> Registry:
    """The registry with every built-in guard and action (importing this package
    registered them)."""
    return REGISTRY
