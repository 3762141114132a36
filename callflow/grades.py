"""The Debt Management grades an officer may hold, lowest first.

DMBM510150 names "Officer level and above" for meetings to quantify a customer's books;
each meeting purpose carries the lowest grade that may hold it (``callflow.purposes``).
"""

from __future__ import annotations

__all__ = ["GRADES", "at_least", "grade_label", "grade_problem"]

#: (code, name), lowest first: the civil service grades of Debt Management staff.
GRADES = (
    ("AA", "Administrative Assistant"),
    ("AO", "Administrative Officer"),
    ("O", "Officer"),
    ("HO", "Higher Officer"),
    ("SO", "Senior Officer"),
    ("G7", "Grade 7"),
    ("G6", "Grade 6"),
)
_RANK = {code: n for n, (code, _) in enumerate(GRADES)}
_LABEL = dict(GRADES)


def grade_label(code: str) -> str:
    """A grade's name ("Officer"), or "not recorded"."""
    return _LABEL.get(code, "grade not recorded")


def grade_problem(code: str) -> str | None:
    """What is wrong with ``code`` as a grade, or None."""
    if code in _RANK:
        return None
    return "one of " + ", ".join(f"{c} ({name})" for c, name in GRADES)


def at_least(code: str, lowest: str) -> bool:
    """Whether grade ``code`` is ``lowest`` or above. Anyone is at least the lowest grade;
    above it, an unrecorded grade is not enough."""
    if _RANK.get(lowest, 0) == 0:
        return True
    return code in _RANK and _RANK[code] >= _RANK[lowest]
