"""The directory: the four VCS organisations, their registered advisers, security questions.

The organisations are fixed by HMRC's guidance (DMBM512015): only these four may use
VSTRS. Advisers are kept in the store; their PIN and security answers only as keyed
hashes (see :mod:`callflow.secrets`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import DirectoryError, InvalidSecret, UnknownAdviser
from .secrets import Hasher, check_pin_rules, issue_pin, normalise_answer

if TYPE_CHECKING:
    from .audit import Audit
    from .store.base import Store

__all__ = ["ORGANISATIONS", "QUESTIONS", "Adviser", "Directory", "Organisation", "Question"]


@dataclass(frozen=True)
class Organisation:
    """A voluntary and community sector organisation trusted to use VSTRS."""

    id: str
    name: str
    short_name: str


ORGANISATIONS: dict[str, Organisation] = {
    org.id: org
    for org in (
        Organisation("taxaid", "Tax Aid", "TaxAid"),
        Organisation("top", "Tax Help for Older People", "TOP"),
        Organisation("litrg", "Low Incomes Tax Reform Group", "LITRG"),
        Organisation("citizens_advice", "Citizens Advice", "Citizens Advice"),
    )
}


@dataclass(frozen=True)
class Question:
    """A security question an adviser can register an answer to."""

    id: str
    prompt: str
    #: The question in Welsh (docs/welsh.md lists every Welsh text for review).
    welsh: str = ""
    #: Answered on the keypad (a date or a number): what a Welsh call prefers, since
    #: speech recognition for Welsh cannot be relied on.
    keypad: bool = False

    def text(self, language: str | None) -> str:
        """The question as asked in ``language`` (English when there is no translation)."""
        return self.welsh if language == "cy-GB" and self.welsh else self.prompt


QUESTIONS: dict[str, Question] = {
    q.id: q
    for q in (
        Question(
            "memorable_date",
            "Please key your memorable date as eight digits, day, month and year.",
            "Rhowch eich dyddiad cofiadwy fel wyth digid: y diwrnod, y mis a'r flwyddyn.",
            keypad=True,
        ),
        Question(
            "memorable_number",
            "Please key your memorable number, then press the hash key.",
            "Rhowch eich rhif cofiadwy, yna pwyswch yr allwedd hash.",
            keypad=True,
        ),
        Question(
            "first_school",
            "Please say the name of your first school.",
            "Dywedwch enw eich ysgol gyntaf.",
        ),
        Question(
            "birth_town",
            "Please say the town you were born in.",
            "Dywedwch enw'r dref lle cawsoch eich geni.",
        ),
        Question(
            "favourite_colour", "Please say your favourite colour.", "Dywedwch eich hoff liw."
        ),
        Question(
            "first_pet",
            "Please say the name of your first pet.",
            "Dywedwch enw eich anifail anwes cyntaf.",
        ),
    )
}

ADVISER_NUMBER = re.compile(r"^[0-9]{4,10}$")
MIN_ANSWERS = 2


@dataclass
class Adviser:
    """A registered adviser of one VCS organisation."""

    number: str
    name: str
    organisation: str
    phone: str = ""
    email: str = ""
    consent_to_act: bool = False
    active: bool = True
    pin_hash: str = ""
    answer_hashes: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def organisation_name(self) -> str:
        """The organisation's full name."""
        return ORGANISATIONS[self.organisation].name

    def identity(self) -> dict[str, str]:
        """Who a verified caller is, as a call's record and a call-back keep it."""
        return {
            "adviser_number": self.number,
            "adviser_name": self.name,
            "organisation": self.organisation,
            "organisation_name": self.organisation_name,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (with hashes: for the store only)."""
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """What may be shown to staff: no hashes, only which questions are registered."""
        data = asdict(self)
        data.pop("pin_hash")
        data["questions"] = sorted(data.pop("answer_hashes"))
        data["organisation_name"] = self.organisation_name
        data["has_pin"] = bool(self.pin_hash)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Adviser:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)


def check_adviser_fields(number: str, name: str, organisation: str, phone: str, email: str) -> None:
    """Refuse adviser details that are malformed, naming each bad field."""
    errors = []
    if not ADVISER_NUMBER.match(number or ""):
        errors.append("number: 4 to 10 digits")
    if not (name or "").strip() or len(name) > 100:
        errors.append("name: 1 to 100 characters")
    if organisation not in ORGANISATIONS:
        errors.append(f"organisation: one of {', '.join(ORGANISATIONS)}")
    if phone and not re.fullmatch(r"\+?[0-9 ]{6,20}", phone):
        errors.append("phone: digits, spaces and an optional leading +")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        errors.append("email: an address like name@example.org")
    if errors:
        raise DirectoryError("; ".join(errors))


class Directory:
    """Adviser records in the store, with their secrets hashed on the way in.

    Every change is audited here, with who made it (``by``), so the CLI, the admin
    console and any API make the same entries and none can skip them.
    """

    def __init__(self, store: Store, hasher: Hasher, audit: Audit) -> None:
        self.store = store
        self.hasher = hasher
        self.audit = audit

    def get(self, number: str) -> Adviser | None:
        """The adviser with that number, or None."""
        if not ADVISER_NUMBER.match(number or ""):
            return None
        data = self.store.get_adviser(number)
        return Adviser.from_dict(data) if data else None

    def require(self, number: str) -> Adviser:
        """The adviser with that number, or UnknownAdviser."""
        adviser = self.get(number)
        if adviser is None:
            raise UnknownAdviser(f"no adviser with number {number}")
        return adviser

    def count(self) -> int:
        """How many advisers there are (never a read of their records)."""
        return self.store.count_advisers()

    def list(self, offset: int = 0, count: int | None = None) -> list[Adviser]:
        """Advisers by number, a page at a time (``count`` None: from ``offset`` on)."""
        return [Adviser.from_dict(d) for d in self.store.list_advisers(offset, count)]

    def add(
        self,
        number: str,
        name: str,
        organisation: str,
        *,
        phone: str = "",
        email: str = "",
        consent_to_act: bool = False,
        now: float,
        by: str,
    ) -> tuple[Adviser, str]:
        """Register an adviser with a freshly issued PIN; returns the adviser and the PIN."""
        check_adviser_fields(number, name, organisation, phone, email)
        pin = issue_pin()
        adviser = Adviser(
            number=number,
            name=name.strip(),
            organisation=organisation,
            phone=phone,
            email=email,
            consent_to_act=consent_to_act,
            pin_hash=self.hasher.hash(pin),
            created_at=now,
            updated_at=now,
        )
        if not self.store.add_adviser(number, adviser.to_dict()):
            raise DirectoryError(f"number: adviser {number} already exists")
        self.audit.record(
            "adviser.added",
            adviser=adviser.number,
            organisation=adviser.organisation,
            by=by,
            outcome="added",
        )
        return adviser, pin

    def update(self, adviser: Adviser, now: float) -> None:
        """Save changes to an existing adviser."""
        adviser.updated_at = now
        self.store.put_adviser(adviser.number, adviser.to_dict())

    def set_pin(self, number: str, pin: str | None, now: float, *, by: str) -> str:
        """Set an adviser's PIN (or issue a random one when ``pin`` is None); returns it."""
        adviser = self.require(number)
        issued = pin is None
        pin = issue_pin() if pin is None else pin
        check_pin_rules(pin)
        adviser.pin_hash = self.hasher.hash(pin)
        self.update(adviser, now)
        self.audit.record(
            "adviser.pin_set", adviser=number, by=by, outcome="issued" if issued else "set"
        )
        return pin

    def set_answers(self, number: str, answers: dict[str, str], now: float, *, by: str) -> None:
        """Replace an adviser's registered security answers."""
        adviser = self.require(number)
        unknown = set(answers) - set(QUESTIONS)
        if unknown:
            raise InvalidSecret(f"unknown questions: {', '.join(sorted(unknown))}")
        if len(answers) < MIN_ANSWERS:
            raise InvalidSecret(f"register at least {MIN_ANSWERS} answers")
        hashes = {}
        for question, answer in answers.items():
            folded = normalise_answer(answer)
            if len(folded) < 3:
                raise InvalidSecret(f"{question}: an answer needs at least 3 letters or digits")
            hashes[question] = self.hasher.hash(folded)
        adviser.answer_hashes = hashes
        self.update(adviser, now)
        self.audit.record(
            "adviser.answers_set", adviser=number, questions=sorted(answers), by=by, outcome="set"
        )

    def remove(self, number: str, *, by: str) -> bool:
        """Remove an adviser; False when there was none."""
        if not self.store.delete_adviser(number):
            return False
        self.audit.record("adviser.removed", adviser=number, by=by, outcome="removed")
        return True
