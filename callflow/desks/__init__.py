"""Read models: what each desk's page and API answer show, built once per audience.

The web layer parses, calls one of these and renders; it never reads the store itself
(ARCHITECTURE.md, "Where read models live"). Every answer is scoped to the person asking
(:class:`~callflow.access.Viewer`).
"""

from .admin import AdminDesk
from .agent import AgentDesk
from .auditor import AuditorDesk
from .designer import DesignerDesk
from .events import Feed
from .specialist import SpecialistDesk
from .supervisor import SupervisorDesk
from .traces import TraceDesk

__all__ = [
    "AdminDesk",
    "AgentDesk",
    "AuditorDesk",
    "DesignerDesk",
    "Feed",
    "SpecialistDesk",
    "SupervisorDesk",
    "TraceDesk",
]
