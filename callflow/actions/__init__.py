"""Built-in guards and actions; importing this package registers them.

Each module documents its guards and actions for designers (see docs/flows.md).
"""

from . import agents, callbacks, checks, common, meetings, specialist, vstrs

__all__ = ["agents", "callbacks", "checks", "common", "meetings", "specialist", "vstrs"]
