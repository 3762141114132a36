"""The admin's desk: the staff directory, and every change to it.

Advisers (their PINs and security answers, lockouts), VSTRS agents, specialist teams and
their hours, visiting officers, API tokens and console accounts. Only an admin may read or
change any of it. Each change goes through the directory's own method, which writes the
audit entry with the admin's username, so the console, the API and the CLI leave the same
trail. A PIN or token is returned once, to be shown once; it is never stored readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..access import Viewer
from ..directory import ORGANISATIONS, QUESTIONS
from ..errors import DirectoryError, Forbidden
from ..grades import GRADES, grade_label
from ..hours import NATIONS, parse_week
from ..presence import STATE_LABELS

if TYPE_CHECKING:
    from ..service import Callflow

__all__ = ["SECTIONS", "AdminDesk"]

#: The directory's sections, in the order the console shows them.
SECTIONS = {
    "advisers": "Advisers",
    "agents": "VSTRS agents",
    "teams": "Specialist teams",
    "specialists": "Specialists",
    "officers": "Officers",
    "tokens": "API tokens",
    "accounts": "Console accounts",
    "needs": "Hand-off reasons",
    "purposes": "Meeting purposes",
}


#: How many advisers one page of the admin's advisers section shows.
ADVISERS_PAGE = 50


#: The roles an account or a token may have, as the forms offer them.
ROLE_CHOICES = [
    ("vstrs_agent", "VSTRS agent"),
    ("specialist", "Specialist"),
    ("supervisor", "Supervisor"),
    ("designer", "Call-flow designer"),
    ("auditor", "Auditor"),
    ("admin", "Admin"),
]


class AdminDesk:
    """What an admin sees and does. Every method refuses anyone else."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    @staticmethod
    def _admin(viewer: Viewer) -> str:
        if not viewer.is_admin:
            raise Forbidden("only an admin manages the staff directory")
        return viewer.who

    # ------------------------------------------------------------ reading

    def overview(self, viewer: Viewer) -> dict[str, int]:
        """How many records each section holds."""
        self._admin(viewer)
        svc = self.service
        return {
            "advisers": svc.directory.count(),
            **svc.staff.counts(),
            "accounts": svc.accounts.count(),
            "needs": len(svc.handoffs.needs.all()),  # one small document
            "purposes": len(svc.meetings.purposes.all()),  # one small document
        }

    def section(
        self, viewer: Viewer, name: str, page: int = 1, number: str = ""
    ) -> list[dict[str, Any]]:
        """One section's rows, each what an admin needs (never a hash or a secret). The
        advisers come a page at a time (ADVISERS_PAGE, by number; ``number``: that adviser
        alone): there may be thousands."""
        self._admin(viewer)
        svc = self.service
        now = svc.clock.now()
        if name == "advisers":
            if number:
                found = svc.directory.get(number)
                advisers = [found] if found is not None else []
            else:
                offset = (max(page, 1) - 1) * ADVISERS_PAGE
                advisers = svc.directory.list(offset, ADVISERS_PAGE)
            statuses = svc.store.lock_statuses([a.number for a in advisers], now)
            return [
                {
                    **adviser.public(),
                    "failures": status.failures,
                    "locked_minutes": round(status.locked_seconds / 60),
                    "hard_locked": status.hard_locked,
                    "locked": bool(status.locked_seconds or status.hard_locked),
                    "numbers_failing": sum(1 for *_, c in status.numbers.values() if c),
                }
                for adviser, status in zip(advisers, statuses, strict=True)
            ]
        if name == "needs":
            return svc.handoffs.needs.all()
        if name == "purposes":
            return svc.meetings.purposes.all()
        if name == "agents":
            return [
                {
                    **a.to_dict(),
                    "availability": STATE_LABELS[svc.staff.availability(a.sees_id, now)["state"]],
                }
                for a in svc.staff.agents()
            ]
        if name == "specialists":
            return [
                {**p.to_dict(), "availability": svc.staff.presence.specialist(p.id)["status"]}
                for p in svc.staff.specialists()
            ]
        if name == "teams":
            return [t.to_dict() for t in svc.staff.teams()]
        if name == "officers":
            return [
                {**o.to_dict(), "grade_name": grade_label(o.grade)} for o in svc.staff.officers()
            ]
        if name == "tokens":
            return sorted(svc.staff.tokens(), key=lambda t: -float(t.get("created_at", 0)))
        if name == "accounts":
            return [a.public() for a in svc.accounts.list()]
        raise DirectoryError(f"no section {name!r}")

    @staticmethod
    def choices() -> dict[str, Any]:
        """What the forms offer: organisations, security questions, roles."""
        return {
            "organisations": [(o.id, o.name) for o in ORGANISATIONS.values()],
            "questions": [(q, question.prompt) for q, question in QUESTIONS.items()],
            "token_roles": ROLE_CHOICES,
            "account_roles": ROLE_CHOICES,
            "grades": list(GRADES),
        }  # fmt: skip

    # ------------------------------------------------------------ advisers

    def add_adviser(
        self,
        viewer: Viewer,
        number: str,
        name: str,
        organisation: str,
        phone: str = "",
        email: str = "",
        consent_to_act: bool = False,
    ) -> tuple[dict[str, Any], str]:
        """Register an adviser; returns them and their PIN (to be shown once)."""
        by = self._admin(viewer)
        svc = self.service
        adviser, pin = svc.directory.add(
            number.strip(),
            name,
            organisation,
            phone=phone.strip(),
            email=email.strip(),
            consent_to_act=consent_to_act,
            now=svc.clock.now(),
            by=by,
        )
        return adviser.public(), pin

    def set_pin(self, viewer: Viewer, number: str, pin: str) -> None:
        """Set an adviser's PIN as given (the CLI reads it without echo)."""
        by = self._admin(viewer)
        directory = self.service.directory
        directory.require(number)
        directory.set_pin(number, pin, self.service.clock.now(), by=by)

    def lockout(self, viewer: Viewer, number: str) -> dict[str, Any]:
        """An adviser's lockout state and why."""
        self._admin(viewer)
        return self.service.adviser_lockout(number)

    def allow(self, viewer: Viewer, kind: str, value: str, note: str = "") -> dict[str, Any]:
        """Put a destination or media URL on an allow-list (ARCHITECTURE.md rule 11)."""
        return self.service.allowlists.add(kind, value, self._admin(viewer), note)

    def disallow(self, viewer: Viewer, kind: str, value: str) -> str:
        """Take an entry off an allow-list; returns the entry as it was kept."""
        by = self._admin(viewer)
        lists = self.service.allowlists
        kept = lists.check(kind, value)
        lists.remove(kind, kept, by)
        return str(kept)

    def issue_pin(self, viewer: Viewer, number: str) -> str:
        """A new PIN for an adviser (the old one stops working); shown once."""
        by = self._admin(viewer)
        return self.service.directory.set_pin(number, None, self.service.clock.now(), by=by)

    def set_answers(self, viewer: Viewer, number: str, answers: dict[str, str]) -> None:
        """Replace an adviser's security answers (the ones given; blanks are left out)."""
        by = self._admin(viewer)
        given = {q: a for q, a in answers.items() if a.strip()}
        self.service.directory.set_answers(number, given, self.service.clock.now(), by=by)

    def unlock_adviser(self, viewer: Viewer, number: str) -> None:
        """Lift an adviser's lockout and every number's throttle."""
        self.service.unlock_adviser(number, by=self._admin(viewer))

    def remove_adviser(self, viewer: Viewer, number: str) -> None:
        """Remove an adviser."""
        if not self.service.directory.remove(number, by=self._admin(viewer)):
            raise DirectoryError(f"no adviser {number}")

    # ------------------------------------------------------------ agents

    def add_agent(
        self, viewer: Viewer, sees_id: str, name: str, reach: str, welsh: bool = False
    ) -> None:
        """Register a VSTRS agent, rung on a number or a client identity (and serving Welsh
        calls too, when they speak Welsh)."""
        by = self._admin(viewer)
        reach = reach.strip()
        if reach and not reach.startswith(("+", "client:")) and not reach[0].isdigit():
            reach = f"client:{reach}"  # a bare name is a softphone's client identity
        staff = self.service.staff
        staff.add_agent(sees_id.strip(), name, reach, self.service.clock.now(), by=by)
        if welsh:
            staff.set_agent_skills(sees_id.strip(), ["cy-GB"], by=by)

    def set_agent_welsh(self, viewer: Viewer, sees_id: str, welsh: bool) -> None:
        """Whether an agent is offered Welsh calls first (they speak Welsh)."""
        by = self._admin(viewer)
        staff = self.service.staff
        agent = staff.agent(sees_id)
        if agent is None:
            raise DirectoryError(f"no agent {sees_id}")
        skills = [s for s in agent.skills if s != "cy-GB"] + (["cy-GB"] if welsh else [])
        staff.set_agent_skills(sees_id, skills, by=by)

    def set_agent_skills(self, viewer: Viewer, sees_id: str, skills: list[str]) -> Any:
        """What an agent serves beyond English (languages like cy-GB, or skill names)."""
        return self.service.staff.set_agent_skills(sees_id, skills, by=self._admin(viewer))

    def set_agent_active(self, viewer: Viewer, sees_id: str, active: bool) -> None:
        """Activate or deactivate an agent."""
        self.service.staff.set_agent_active(sees_id, active, by=self._admin(viewer))

    def remove_agent(self, viewer: Viewer, sees_id: str) -> None:
        """Remove an agent."""
        if not self.service.staff.remove_agent(sees_id, by=self._admin(viewer)):
            raise DirectoryError(f"no agent {sees_id}")

    # ------------------------------------------------------------ teams

    @staticmethod
    def _numbers(text: str) -> list[str]:
        return [n for n in text.replace(",", " ").split() if n]

    def add_team(
        self,
        viewer: Viewer,
        team_id: str,
        name: str,
        handles: str,
        numbers: str,
        hours: str,
        nation: str = "england-and-wales",
    ) -> None:
        """Register a specialist team (numbers rung in order, separated by spaces or commas)."""
        by = self._admin(viewer)
        self.service.staff.add_team(
            team_id.strip(), name, handles, self._numbers(numbers), hours, by=by, nation=nation
        )

    def update_team(
        self,
        viewer: Viewer,
        team_id: str,
        name: str,
        handles: str,
        numbers: str,
        hours: str,
        welsh_numbers: str = "",
    ) -> None:
        """Change a team's name, what it handles, its numbers, its hours, and which of its
        numbers are answered in Welsh (rung first for a Welsh call)."""
        by = self._admin(viewer)
        staff = self.service.staff
        welsh = {n: ["cy-GB"] for n in self._numbers(welsh_numbers)}
        listed = self._numbers(numbers)
        stray = [n for n in welsh if n not in listed]
        if stray:
            raise DirectoryError(
                f"welsh_numbers: {', '.join(stray)} is not one of the team's numbers above"
            )
        team = staff.update_team(team_id, name, handles, listed, hours, by=by)
        if welsh != team.languages:
            staff.set_team_languages(team_id, welsh, by=by)

    def remove_team(self, viewer: Viewer, team_id: str) -> None:
        """Remove a team."""
        if not self.service.staff.remove_team(team_id, by=self._admin(viewer)):
            raise DirectoryError(f"no team {team_id}")

    # ------------------------------------------------------------ specialists

    def add_specialist(
        self, viewer: Viewer, staff_number: str, name: str, team: str, reach: str, welsh: bool
    ) -> None:
        """Register a specialist in a team, rung on their own number or client."""
        by = self._admin(viewer)
        reach = reach.strip()
        if reach and not reach.startswith(("+", "client:")) and not reach[0].isdigit():
            reach = f"client:{reach}"  # a bare name is a softphone's client identity
        staff = self.service.staff
        person = staff.add_specialist(
            staff_number.strip(), name, team, reach, self.service.clock.now(), by=by
        )
        if welsh:
            staff.update_specialist(person.id, skills=["cy-GB"], by=by)

    def update_specialist(
        self, viewer: Viewer, staff_number: str, *, team: str | None = None,
        active: bool | None = None, reach: str | None = None, skills: list[str] | None = None,
    ) -> Any:  # fmt: skip
        """Move a specialist to another team, change their phone or the languages they
        serve, or (de)activate them."""
        if reach and not reach.startswith(("+", "client:")):
            reach = f"client:{reach}"
        return self.service.staff.update_specialist(
            staff_number,
            team=team or None,
            active=active,
            reach=reach or None,
            skills=skills,
            by=self._admin(viewer),
        )

    def remove_specialist(self, viewer: Viewer, staff_number: str) -> None:
        """Remove a specialist."""
        if not self.service.staff.remove_specialist(staff_number, by=self._admin(viewer)):
            raise DirectoryError(f"no specialist {staff_number}")

    # ------------------------------------------------------------ officers

    def add_officer(self, viewer: Viewer, number: str, name: str, grade: str) -> None:
        """Register an officer by the identity number on their card, with their grade."""
        by = self._admin(viewer)
        if not grade:
            raise DirectoryError("grade: the officer's grade (a meeting's purpose needs one)")
        self.service.staff.add_officer(
            number.strip(), name, self.service.clock.now(), grade=grade, by=by
        )

    def set_officer_grade(self, viewer: Viewer, number: str, grade: str) -> None:
        """Record an officer's grade."""
        self.service.staff.set_officer_grade(number, grade, by=self._admin(viewer))

    def set_officer_pin(self, viewer: Viewer, number: str, pin: str | None) -> str:
        """An officer's PIN for the meeting start line (a random one when ``pin`` is None):
        returned to be given to them once."""
        return self.service.meetings.pins.set_pin(number, pin, by=self._admin(viewer))

    def set_officer_hours(self, viewer: Viewer, number: str, hours: str, nation: str) -> None:
        """An officer's working hours and nation: the times their diary offers."""
        self.service.staff.set_officer_hours(number, hours, nation, by=self._admin(viewer))

    # ------------------------------------------------------------ meeting purposes

    def add_purpose(
        self, viewer: Viewer, purpose_id: str, words: str, grade: str, words_cy: str = ""
    ) -> None:
        """Offer a meeting purpose (the lowest grade that may hold it)."""
        self.service.meetings.purposes.add(
            purpose_id.strip(), words, grade, self._admin(viewer), words_cy
        )

    def set_purpose_grade(self, viewer: Viewer, purpose_id: str, grade: str) -> None:
        """Change the lowest grade that may hold a purpose."""
        self.service.meetings.purposes.set_lowest_grade(purpose_id, grade, self._admin(viewer))

    def retire_purpose(self, viewer: Viewer, purpose_id: str) -> None:
        """No longer offered for new meetings."""
        self.service.meetings.purposes.retire(purpose_id, self._admin(viewer))

    def set_officer_active(self, viewer: Viewer, number: str, active: bool) -> None:
        """Activate or deactivate an officer."""
        self.service.staff.set_officer_active(number, active, by=self._admin(viewer))

    def remove_officer(self, viewer: Viewer, number: str) -> None:
        """Remove an officer."""
        if not self.service.staff.remove_officer(number, by=self._admin(viewer)):
            raise DirectoryError(f"no officer {number}")

    # ------------------------------------------------------------ tokens

    def issue_token(self, viewer: Viewer, role: str, staff_id: str, name: str) -> str:
        """An API token for a member of staff; returned once, stored only as a keyed hash."""
        by = self._admin(viewer)
        staff_id = staff_id.strip()
        if role == "admin" and not staff_id:
            staff_id = viewer.account
        return self.service.staff.issue_token(
            role, staff_id, name.strip() or staff_id, self.service.clock.now(), by=by
        )

    def revoke_token(self, viewer: Viewer, token_id: str) -> None:
        """Revoke a token by its id."""
        if not self.service.staff.revoke_token(token_id, by=self._admin(viewer)):
            raise DirectoryError(f"no token {token_id}")

    # ------------------------------------------------------------ accounts

    def add_account(
        self,
        viewer: Viewer,
        username: str,
        name: str,
        role: str,
        password: str,
        sees_id: str = "",
        specialist: str = "",
    ) -> None:
        """A console account (an agent's names their SEES ID, a specialist's their staff
        number)."""
        by = self._admin(viewer)
        self.service.accounts.add(
            username.strip().lower(),
            name,
            role,
            password,
            self.service.clock.now(),
            sees_id=sees_id.strip(),
            specialist=specialist.strip(),
            by=by,
        )

    def add_need(self, viewer: Viewer, need_id: str, label: str) -> dict[str, Any]:
        """A reason agents may give for a hand-off (a retired one brought back)."""
        return self.service.handoffs.needs.add(need_id, label, self._admin(viewer))

    def retire_need(self, viewer: Viewer, need_id: str) -> None:
        """Agents no longer give this reason; hand-offs that gave it keep it."""
        self.service.handoffs.needs.retire(need_id, self._admin(viewer))

    def first_admin(self, username: str, name: str, password: str) -> None:
        """The first admin account of a new store, made by its operator with nobody signed
        in: refused once any active admin account exists (then an admin adds accounts).
        Whoever holds REDIS_URL and CALLFLOW_SECRET_KEY has the operator's power anyway
        (README: Who acts); this is the one act that needs no person, and it is audited."""
        accounts = self.service.accounts
        if any(a.role == "admin" and a.active for a in accounts.list()):
            raise Forbidden(
                "this store has an admin account already: sign in as an admin "
                "(`callflow login`) to add accounts"
            )
        accounts.add(
            username.strip().lower(),
            name,
            "admin",
            password,
            self.service.clock.now(),
            by="operator (first admin account)",
        )

    def set_password(self, viewer: Viewer, username: str, password: str) -> None:
        """Replace an account's password; its sessions end."""
        self.service.accounts.set_password(username, password, by=self._admin(viewer))

    def remove_account(self, viewer: Viewer, username: str) -> None:
        """Remove an account and end its sessions; never the admin's own, nor the last admin."""
        by = self._admin(viewer)
        accounts = self.service.accounts
        if username == viewer.username:
            raise DirectoryError("username: you cannot remove your own account")
        target = accounts.get(username)
        if target is None:
            raise DirectoryError(f"no account {username}")
        admins = [a for a in accounts.list() if a.role == "admin"]
        if target.role == "admin" and len(admins) <= 1:
            raise DirectoryError("username: the last admin account cannot be removed")
        accounts.remove(username, by=by)

    # ------------------------------------------------------------ the line

    def line(self, viewer: Viewer) -> dict[str, Any]:
        """The VSTRS line now: its hours in words, and any emergency closure."""
        self._admin(viewer)
        from datetime import datetime
        from zoneinfo import ZoneInfo

        svc = self.service
        now = svc.clock.now()
        calendar = svc.staff.calendar("line")
        return {
            "status": calendar.describe(datetime.fromtimestamp(now, ZoneInfo("Europe/London"))),
            "week": calendar.week,
            "closure": svc.staff.closure(now),
        }

    def calendars(self, viewer: Viewer) -> list[dict[str, Any]]:
        """Every calendar an admin keeps: the VSTRS line's, then each team's. Each says
        whether it is open now and why, its week, the nation whose bank holidays close it,
        and its exceptions, numbered as a removal names them."""
        self._admin(viewer)
        from datetime import datetime
        from zoneinfo import ZoneInfo

        svc = self.service
        at = datetime.fromtimestamp(svc.clock.now(), ZoneInfo("Europe/London"))
        # The teams as listed (one read): each team record carries its calendar.
        owners = [("line", "The VSTRS line", svc.staff.calendar("line"))] + [
            (t.id, t.name, t.calendar()) for t in svc.staff.teams()
        ]
        shown = []
        for owner, name, calendar in owners:
            shown.append(
                {
                    "owner": owner,
                    "name": name,
                    "status": calendar.describe(at),
                    "open": calendar.is_open(at),
                    "week": calendar.week,
                    "nation": calendar.nation,
                    "exceptions": [
                        {
                            "number": n,
                            "what": (
                                f"open on {e['open_on']} {e['hours']}"
                                if e.get("open_on")
                                else f"closed {e['closed_from']} to {e['closed_to']}"
                            ).replace("T", " "),
                            "reason": e.get("reason", ""),
                        }
                        for n, e in enumerate(calendar.exceptions, start=1)
                    ],
                }
            )
        return shown

    def change_calendar(
        self, viewer: Viewer, owner: str, action: str, form: dict[str, str]
    ) -> None:
        """One change to a calendar, audited with who: ``week`` (hours and nation),
        ``closure`` (from, to, reason), ``opening`` (on, hours, reason), ``remove``."""
        by = self._admin(viewer)
        staff = self.service.staff
        if owner != "line" and staff.team(owner) is None:
            raise DirectoryError(f"no team {owner}")
        if action == "week":

            if form.get("nation") not in NATIONS:
                raise DirectoryError(f"nation: one of {', '.join(NATIONS)}")
            try:
                parse_week(form.get("week", ""))
            except DirectoryError as exc:
                raise DirectoryError(f"week: {str(exc).removeprefix('hours: ')}") from exc
            staff.change_calendar(owner, by=by, week=form["week"], nation=form["nation"])
        elif action == "closure":
            closure = {
                "closed_from": form.get("closed_from", ""),
                "closed_to": form.get("closed_to", ""),
                "reason": form.get("reason", ""),
            }
            try:
                staff.change_calendar(owner, by=by, add=closure)
            except DirectoryError as exc:
                field = "closed_to" if str(exc).startswith("to:") else "closed_from"
                text = str(exc).split(": ", 1)[-1]
                raise DirectoryError(f"{field}: {text}") from exc
        elif action == "opening":
            opening = {
                "open_on": form.get("open_on", ""),
                "hours": form.get("hours", ""),
                "reason": form.get("reason", ""),
            }
            if not opening["open_on"]:
                raise DirectoryError("open_on: a date like 2026-12-27")
            try:
                staff.change_calendar(owner, by=by, add=opening)
            except DirectoryError as exc:
                text = str(exc)
                raise DirectoryError(
                    "open_on: " + text.removeprefix("on: ") if text.startswith("on:") else text
                ) from exc
        elif action == "remove":
            number = form.get("number", "")
            if not number.isdigit():
                raise DirectoryError("number: the exception's number")
            staff.change_calendar(owner, by=by, remove=int(number))
        else:
            raise DirectoryError(f"no calendar change {action!r}")

    @staticmethod
    def _until(until: str) -> float | None:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        if not until.strip():
            return None
        try:
            when = datetime.fromisoformat(until.strip())
        except ValueError as exc:
            raise DirectoryError("until: a UK local time like 2026-12-01T14:00") from exc
        return when.replace(tzinfo=ZoneInfo("Europe/London")).timestamp()

    def check_closure(
        self, viewer: Viewer, english: str, welsh: str, until: str, reason: str
    ) -> dict[str, Any]:
        """The closure as it would be made (to confirm before it is): checked, not made."""
        by = self._admin(viewer)
        svc = self.service
        return svc.staff.closure_doc(
            {"en-GB": english, "cy-GB": welsh}, self._until(until), svc.clock.now(), reason, by
        )

    def start_closure(
        self, viewer: Viewer, english: str, welsh: str, until: str, reason: str
    ) -> None:
        """Close the line to new calls at short notice, with a message (and its Welsh) and
        the reason (audited)."""
        by = self._admin(viewer)
        svc = self.service
        svc.staff.start_closure(
            {"en-GB": english, "cy-GB": welsh},
            self._until(until),
            svc.clock.now(),
            by=by,
            reason=reason,
        )

    def end_closure(self, viewer: Viewer) -> None:
        """Open the line to new calls again."""
        if not self.service.staff.end_closure(by=self._admin(viewer)):
            raise DirectoryError("the line is not closed at short notice")
