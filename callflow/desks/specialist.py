"""The specialist's desk: the latest hand-off to their team and the disclosure banner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..access import Viewer, grant_for_viewer, handoff_for_viewer

if TYPE_CHECKING:
    from ..service import Callflow


class SpecialistDesk:
    """What a specialist sees: only their own team's hand-offs and grants."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    def state(self, viewer: Viewer) -> dict[str, Any]:
        """The specialist console's live state: the card and whether they may disclose."""
        svc = self.service
        newest = svc.store.indexed("handoffs", f"team:{viewer.team}", newest_first=True, count=1)
        latest = newest[0] if newest and viewer.role == "specialist" else None
        grant = None
        if latest is not None and latest.get("grant_id"):
            stored = svc.store.get_doc("grants", latest["grant_id"])
            if stored is not None:
                grant = grant_for_viewer(viewer, stored, svc.handoffs.grant_status(stored))
        return {
            "now": svc.clock.now(),
            "handoff": handoff_for_viewer(viewer, latest) if latest is not None else None,
            "grant": grant,
        }
