"""Hand-offs: the real-time hand-off of a verified VSTRS call to a specialist of Debt
Management, the SEES ID check, and the disclosure grant that lasts only as long as the
handed-off call, for the specialist who took it.

By job: ``lifecycle`` (its states and moves, declared once), ``request`` (the agent's
request, checked), ``service`` (ringing, taking, checking, handing over, failing), and
``grants`` (issuing, ending and answering about grants).
"""

from .grants import CANNOT_CONFIRM, DOUBT, IN_DOUBT, NO_AUTHORITY, Grants, end_reason_text
from .lifecycle import FAILURE_REASONS, HANDOFF, IN_PROGRESS, LIVE
from .request import validate_request
from .service import HandOffs, handoff_index

__all__ = [
    "CANNOT_CONFIRM",
    "DOUBT",
    "FAILURE_REASONS",
    "HANDOFF",
    "IN_DOUBT",
    "IN_PROGRESS",
    "LIVE",
    "NO_AUTHORITY",
    "Grants",
    "HandOffs",
    "end_reason_text",
    "handoff_index",
    "validate_request",
]
