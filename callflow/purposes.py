"""What a face-to-face meeting may be for: a list the admin keeps, each purpose with the
lowest grade of officer that may hold it.

DMBM510150 lists what meetings are for: quantify the customer's books (Officer level and
above), help fill in their return and establish the amount owed, discuss time to pay, go
through the balance owed and reconcile the debt. Each purpose carries the words the
customer hears on the meeting call ("We would like to meet you about ..."). Purposes are
retired, never deleted: a meeting keeps the purpose it was arranged for.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import DirectoryError
from .grades import grade_label, grade_problem

if TYPE_CHECKING:
    from .audit import Audit
    from .clock import Clock
    from .store.base import Store

__all__ = ["DEFAULT_PURPOSES", "MeetingPurposes"]

DOC = ("meeting_purposes", "current")
#: (id, what the customer hears in English and in Welsh, the lowest grade that may hold
#: it): a new service's list, from DMBM510150's.
DEFAULT_PURPOSES = (
    (
        "help_with_return",
        "help filling in your tax return and working out what you owe",
        "help i lenwi eich Ffurflen Dreth a chyfrifo faint sydd arnoch",
        "AA",
    ),
    ("time_to_pay", "time to pay what you owe", "amser i dalu'r hyn sydd arnoch", "AA"),
    ("reconcile", "going through the balance you owe", "trafod y balans sydd arnoch", "AA"),
    (
        "quantify_books",
        "looking at your business books to work out your tax",
        "edrych ar lyfrau eich busnes i gyfrifo'ch treth",
        "O",
    ),
    ("other", "another matter", "mater arall", "AA"),
)
ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_WORDS = 120
MAX_DETAIL = 300


def _defaults() -> list[dict[str, Any]]:
    return [
        {"id": i, "words": words, "words_cy": welsh, "lowest_grade": grade, "active": True}
        for i, words, welsh, grade in DEFAULT_PURPOSES
    ]


class MeetingPurposes:
    """The purposes a meeting may be arranged for (one document, changed atomically)."""

    def __init__(self, store: Store, audit: Audit, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    def all(self) -> list[dict[str, Any]]:
        """Every purpose, in the admin's order, retired ones too (``active`` says)."""
        doc = self.store.get_doc(*DOC)
        rows = _defaults() if doc is None else list(doc["purposes"])
        return [{**p, "lowest_grade_name": grade_label(p["lowest_grade"])} for p in rows]

    def active(self) -> list[dict[str, Any]]:
        """The purposes a meeting may be arranged for now."""
        return [p for p in self.all() if p["active"]]

    def get(self, purpose_id: str) -> dict[str, Any] | None:
        """A purpose (a retired one too), or None."""
        return next((p for p in self.all() if p["id"] == purpose_id), None)

    def check(
        self, purpose_id: Any, detail: Any, language: str | None = None
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """A meeting's purpose as given, with what the customer will hear (in the meeting's
        ``language``), and its errors. "Other" needs the words; any other may add some."""
        errors: list[str] = []
        choices = {p["id"]: p for p in self.active()}
        if not isinstance(purpose_id, str) or purpose_id not in choices:
            errors.append(f"purpose: one of {', '.join(choices)}")
        words = " ".join(detail.split()) if isinstance(detail, str) else ""
        if len(words) > MAX_DETAIL:
            errors.append(f"about: up to {MAX_DETAIL} characters")
        elif purpose_id == "other" and not words:
            errors.append("about: say what the meeting is about (the customer hears it)")
        if errors:
            return None, errors
        purpose = choices[str(purpose_id)]
        heard = purpose.get("words_cy") if language == "cy-GB" else None
        said = (heard or purpose["words"]) + (f": {words}" if words else "")
        if purpose_id == "other":
            said = words
        return {**purpose, "detail": words, "said": said}, []

    def _change(self, change: Any) -> list[dict[str, Any]]:
        def apply(doc: dict[str, Any] | None) -> dict[str, Any]:
            rows = _defaults() if doc is None else list(doc["purposes"])
            return {"purposes": change(rows), "changed_at": self.clock.now()}

        written = self.store.update_doc(DOC[0], DOC[1], apply)
        return list((written or {}).get("purposes", []))

    def add(
        self, purpose_id: str, words: str, lowest_grade: str, by: str, words_cy: str = ""
    ) -> dict[str, Any]:
        """Offer a purpose (a retired one's id brings it back with these words and grade);
        ``words_cy`` is what a Welsh meeting's customer hears (else the English words)."""
        said = " ".join((words or "").split())
        welsh = " ".join((words_cy or "").split())
        errors = []
        if not ID.match(purpose_id or ""):
            errors.append("id: lower-case letters, digits and _, like quantify_books")
        if not said or len(said) > MAX_WORDS:
            errors.append(f"words: what the customer hears, 1 to {MAX_WORDS} characters")
        if len(welsh) > MAX_WORDS:
            errors.append(f"words_cy: up to {MAX_WORDS} characters")
        problem = grade_problem(lowest_grade)
        if problem:
            errors.append(f"grade: {problem}")
        if errors:
            raise DirectoryError("; ".join(errors))
        row = {
            "id": purpose_id,
            "words": said,
            "words_cy": welsh,
            "lowest_grade": lowest_grade,
            "active": True,
        }

        def put(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [r for r in rows if r["id"] != purpose_id]
            return [*kept, row]

        self._change(put)
        self.audit.record(
            "meeting.purpose_added", purpose=purpose_id, grade=lowest_grade, by=by, outcome="added"
        )
        return row

    def set_lowest_grade(self, purpose_id: str, lowest_grade: str, by: str) -> None:
        """Change the lowest grade that may hold a purpose (meetings arranged already keep
        their officer)."""
        problem = grade_problem(lowest_grade)
        if problem:
            raise DirectoryError(f"grade: {problem}")
        if self.get(purpose_id) is None:
            raise DirectoryError(f"id: no purpose {purpose_id}")
        self._change(
            lambda rows: [
                {**r, "lowest_grade": lowest_grade} if r["id"] == purpose_id else r for r in rows
            ]
        )
        self.audit.record(
            "meeting.purpose_grade",
            purpose=purpose_id,
            grade=lowest_grade,
            by=by,
            outcome="changed",
        )

    def retire(self, purpose_id: str, by: str) -> None:
        """No longer offered; meetings arranged for it keep it."""
        if self.get(purpose_id) is None:
            raise DirectoryError(f"id: no purpose {purpose_id}")
        self._change(
            lambda rows: [{**r, "active": False} if r["id"] == purpose_id else r for r in rows]
        )
        self.audit.record("meeting.purpose_retired", purpose=purpose_id, by=by, outcome="retired")
