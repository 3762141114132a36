"""Why a hand-off needed a specialist: a list the admin keeps.

DMBM512015 says hand-offs "should continue to be minimal". Each hand-off records why the
case needed a specialist area of Debt Management (one reason from this list, and the
agent's own words if they add any), so the auditor's and the supervisor's pages count
hand-offs by reason and a rising share has a story behind it. Reasons are retired, never
deleted: a hand-off keeps the reason it was given, by id and by label.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import DirectoryError

if TYPE_CHECKING:
    from ..audit import Audit
    from ..clock import Clock
    from ..store.base import Store

__all__ = ["DEFAULT_NEEDS", "HandoffNeeds"]

DOC = ("handoff_needs", "current")
#: The list a new service starts with; an admin changes it.
DEFAULT_NEEDS = (
    ("time_to_pay", "Time to pay beyond VSTRS"),
    ("enforcement", "Enforcement action"),
    ("insolvency", "Insolvency or bankruptcy"),
    ("disputed_debt", "Disputed debt"),
    ("vulnerable", "Vulnerable customer"),
    ("other", "Other (say why)"),
)
ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_LABEL = 100
MAX_DETAIL = 300


def _defaults() -> list[dict[str, Any]]:
    return [{"id": i, "label": label, "active": True} for i, label in DEFAULT_NEEDS]


class HandoffNeeds:
    """The reasons a hand-off may give, in the store (one document, changed atomically)."""

    def __init__(self, store: Store, audit: Audit, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    def all(self) -> list[dict[str, Any]]:
        """Every reason, in the admin's order, retired ones too (``active`` says)."""
        doc = self.store.get_doc(*DOC)
        return _defaults() if doc is None else list(doc["needs"])

    def active(self) -> list[dict[str, Any]]:
        """The reasons an agent may choose now."""
        return [n for n in self.all() if n["active"]]

    def label(self, need_id: str) -> str:
        """A reason's label (a retired one's too)."""
        return next((n["label"] for n in self.all() if n["id"] == need_id), need_id)

    def check(self, need_id: Any, detail: Any) -> tuple[dict[str, str] | None, dict[str, str]]:
        """A hand-off's reason and words as given, cleaned, and an error for each bad one.
        "Other" needs words."""
        errors: dict[str, str] = {}
        choices = {n["id"]: n["label"] for n in self.active()}
        if not isinstance(need_id, str) or need_id not in choices:
            errors["need"] = f"required: why a specialist is needed, one of {', '.join(choices)}"
        words = " ".join(detail.split()) if isinstance(detail, str) else ""
        if (detail is not None and not isinstance(detail, str)) or len(words) > MAX_DETAIL:
            errors["need_detail"] = f"up to {MAX_DETAIL} characters"
        elif need_id == "other" and not words:
            errors["need_detail"] = "say why a specialist is needed"
        if errors:
            return None, errors
        assert isinstance(need_id, str)
        return {"id": need_id, "label": choices[need_id], "detail": words}, {}

    def _change(self, change: Any) -> None:
        def apply(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            # Never a read inside the change: it runs in the store's atomic step.
            needs = list(doc["needs"]) if doc else _defaults()
            changed = change(needs)
            return None if changed is None else {"needs": changed}

        self.store.change_doc(*DOC, apply)

    def add(self, need_id: str, label: str, by: str) -> dict[str, Any]:
        """A new reason (or a retired one brought back, with this label). Audited."""
        need_id = (need_id or "").strip()
        label = " ".join((label or "").split())
        errors = []
        if not ID.match(need_id):
            errors.append("id: lower-case letters, digits and _, like time_to_pay")
        if not label or len(label) > MAX_LABEL:
            errors.append(f"label: what agents see, up to {MAX_LABEL} characters")
        if errors:
            raise DirectoryError("; ".join(errors))
        added = {"id": need_id, "label": label, "active": True}

        def change(needs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            others = [n for n in needs if n["id"] != need_id]
            if len(others) != len(needs) and any(n["id"] == need_id and n["active"] for n in needs):
                raise DirectoryError(f"reason {need_id} already exists")
            return [*others, added]

        self._change(change)
        self.audit.record("handoff.need_added", need=need_id, label=label, by=by, outcome="added")
        return added

    def retire(self, need_id: str, by: str) -> None:
        """Agents no longer choose this reason; hand-offs that gave it keep it. Audited."""

        def change(needs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            if not any(n["id"] == need_id and n["active"] for n in needs):
                raise DirectoryError(f"no reason {need_id} in use")
            if sum(1 for n in needs if n["active"]) == 1:
                raise DirectoryError("the last reason cannot be retired: agents must choose one")
            return [{**n, "active": False} if n["id"] == need_id else n for n in needs]

        self._change(change)
        self.audit.record("handoff.need_retired", need=need_id, by=by, outcome="retired")
