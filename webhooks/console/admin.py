"""The admin console: the staff directory (advisers, agents, teams, officers, tokens,
accounts). Each page is one section; each change is one call to the admin's desk, whose
directory methods write the audit entry. A PIN or token is shown once, in the answer to
the form that issued it (never in a URL, a cookie or a redirect)."""

from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from callflow.desks import AdminDesk
from callflow.desks.admin import ADVISERS_PAGE, SECTIONS
from callflow.errors import CallflowError
from callflow.hours import NATIONS

from .base import bp, me, service, signed_in, viewer

#: Each section's actions: the form fields they read, and what a removal names.
ACTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "advisers": {
        "add": ("number", "name", "organisation", "phone", "email", "consent_to_act"),
        "issue_pin": ("number",),
        "answers": ("number",),
        "unlock": ("number",),
        "remove": ("number",),
    },
    "agents": {
        "add": ("sees_id", "name", "reach", "welsh"),
        "welsh_on": ("sees_id",),
        "welsh_off": ("sees_id",),
        "activate": ("sees_id",),
        "deactivate": ("sees_id",),
        "remove": ("sees_id",),
    },
    "teams": {
        "add": ("id", "name", "handles", "numbers", "hours"),
        "update": ("id", "name", "handles", "numbers", "hours", "welsh_numbers"),
        "remove": ("id",),
    },
    "specialists": {
        "add": ("staff_number", "name", "team", "reach", "welsh"),
        "move": ("staff_number", "team"),
        "activate": ("staff_number",),
        "deactivate": ("staff_number",),
        "remove": ("staff_number",),
    },
    "officers": {
        "add": ("number", "name", "grade"),
        "grade": ("number", "grade"),
        "activate": ("number",),
        "deactivate": ("number",),
        "remove": ("number",),
    },
    "tokens": {"issue": ("role", "staff_id", "name"), "revoke": ("token_id",)},
    "accounts": {
        "add": ("username", "name", "role", "sees_id", "specialist"),
        "password": ("username",),
        "remove": ("username",),
    },
    "needs": {"add": ("id", "label"), "retire": ("id",)},
    "purposes": {
        "add": ("id", "words", "words_cy", "grade"),
        "grade": ("id", "grade"),
        "retire": ("id",),
    },
}
#: Fields that are secrets: never echoed back into a form.
SECRET_FIELDS = frozenset({"password", "pin"})
FIELD = re.compile(r"^([a-z_]+): (.+)$")


#: A field's format error in the design system's words ("Enter ..."), by section and
#: field. Conflicts (already exists, taken) keep the service's own words.
WORDS = {
    ("advisers", "number"): "Enter the adviser's number: 4 to 10 digits",
    ("advisers", "name"): "Enter the adviser's full name (up to 100 characters)",
    ("advisers", "organisation"): "Select the adviser's organisation",
    ("advisers", "phone"): "Enter a phone number in digits, like 020 7946 0000",
    ("advisers", "email"): "Enter an email address like name@example.org",
    ("agents", "sees_id"): "Enter the agent's SEES ID: 6 to 10 digits",
    ("agents", "name"): "Enter the agent's full name (up to 100 characters)",
    ("agents", "reach"): "Enter a phone number like +441632960100, or the softphone's client name",
    ("teams", "id"): "Enter a team id of lower-case letters, digits and _, like debt_pursuit",
    ("teams", "name"): "Enter the team's name",
    ("teams", "numbers"): "Enter one or more numbers to ring, like +441632960200",
    ("teams", "hours"): "Enter the opening hours like Mon-Fri 08:30-17:00",
    ("specialists", "staff_number"): "Enter the specialist's staff number: 6 to 10 digits",
    ("specialists", "name"): "Enter the specialist's full name (up to 100 characters)",
    ("specialists", "team"): "Select the specialist's team",
    ("specialists", "reach"): (
        "Enter their own phone number like +441632960201, or their softphone's client name"
    ),
    ("officers", "number"): "Enter the officer's identity number: 6 to 10 digits",
    ("officers", "name"): "Enter the name the officer gives customers (up to 100 characters)",
    ("accounts", "username"): "Enter a username of 3 to 40 lower-case letters, digits, . _ or -",
    ("accounts", "name"): "Enter the person's full name",
    ("accounts", "password"): "Enter a password of at least 12 characters",
    ("needs", "id"): "Enter an id of lower-case letters, digits and _, like time_to_pay",
    ("needs", "label"): "Enter what agents see, up to 100 characters",
    ("officers", "grade"): "Select the officer's grade",
    ("purposes", "id"): "Enter an id of lower-case letters, digits and _, like quantify_books",
    ("purposes", "words"): "Enter what the customer hears, up to 120 characters",
    ("purposes", "words_cy"): "Enter what a Welsh meeting's customer hears, up to 120 characters",
    ("purposes", "grade"): "Select the lowest grade that may hold it",
}
CONFLICT = re.compile(r"already exists|is taken|cannot|last admin|register the|must come|days are")


def field_errors(message: str, section: str = "") -> list[tuple[str, str]]:
    """A directory error's parts as (field, message); field is "" when none is named."""
    errors = []
    for part in message.split("; "):
        match = FIELD.match(part)
        if not match:
            errors.append(("", part))
            continue
        field, text = match.group(1), match.group(2)
        words = WORDS.get((section, field))
        errors.append((field, words if words and not CONFLICT.search(text) else text))
    return errors


def _desk() -> AdminDesk:
    return AdminDesk(service())


def _page(section: str, status: int = 200, **extra: Any) -> Any:
    desk = _desk()
    number = request.args.get("page", "1")
    page = int(number) if number.isdigit() and 0 < int(number) < 100_000 else 1
    find = request.args.get("number", "").strip() if request.method == "GET" else ""
    paging: dict[str, Any] = {}
    if section == "advisers":
        total = service().directory.count()
        paging = {
            "page": page,
            "pages": max(1, -(-total // ADVISERS_PAGE)),
            "total": total,
            "find": find,
        }
    return render_template(
        "console/admin.html",
        me=me(),
        section=section,
        sections=SECTIONS,
        rows=desk.section(viewer(), section, page, find),
        paging=paging,
        choices=desk.choices(),
        team_options=[(t.id, t.name) for t in service().staff.teams()],
        values=extra.pop("values", {}),
        errors=extra.pop("errors", []),
        form=extra.pop("form", ""),
        **extra,
    ), status


@bp.get("/admin")
@signed_in("admin")
def admin() -> Any:
    """The admin's home: each section and how many records it holds, and the line."""
    return _home()


def _home(status: int = 200, errors: list[tuple[str, str]] | None = None, **values: str) -> Any:
    desk = _desk()
    return render_template(
        "console/admin_home.html",
        me=me(),
        sections=SECTIONS,
        counts=desk.overview(viewer()),
        line=desk.line(viewer()),
        errors=errors or [],
        values=values,
    ), status


@bp.post("/admin/line/<action>")
@signed_in("admin")
def admin_line(action: str) -> Any:
    """Close the VSTRS line at short notice (a page to confirm it first, with the reason),
    or open it again (audited with who)."""
    form = {k: request.form.get(k, "") for k in ("english", "welsh", "until", "reason")}
    try:
        if action == "close" and request.form.get("confirm") != "yes":
            closure = _desk().check_closure(
                viewer(), form["english"], form["welsh"], form["until"], form["reason"]
            )
            return render_template(
                "console/admin_close_line.html", me=me(), form=form, closure=closure
            )
        if action == "close":
            _desk().start_closure(
                viewer(), form["english"], form["welsh"], form["until"], form["reason"]
            )
            flash("The line is closed to new calls; calls in progress go on.")
        elif action == "open":
            _desk().end_closure(viewer())
            flash("The line is open to new calls again.")
        else:
            abort(404)
    except CallflowError as exc:
        errors = [
            ("closure-" + (f if f != "message" else "english") if f else "", m)
            for f, m in field_errors(str(exc))
        ]
        return _home(400, errors, **form)
    return redirect(url_for("console.admin"), code=303)


#: What each calendar form reads.
CALENDAR_FORMS = {
    "week": ("week", "nation"),
    "closure": ("closed_from", "closed_to", "reason"),
    "opening": ("open_on", "hours", "reason"),
    "remove": ("number",),
}
NATION_NAMES = {
    "england-and-wales": "England and Wales",
    "scotland": "Scotland",
    "northern-ireland": "Northern Ireland",
    "none": "None (open every day of the year)",
}
CALENDAR_DONE = {
    "week": "has new hours",
    "closure": "has a new closure",
    "opening": "has a new extra opening",
    "remove": "has one exception fewer",
}


def _calendars(
    status: int = 200,
    errors: list[tuple[str, str]] | None = None,
    form: str = "",
    values: dict[str, str] | None = None,
) -> Any:

    return render_template(
        "console/admin_calendars.html",
        me=me(),
        sections=SECTIONS,
        calendars=_desk().calendars(viewer()),
        nations=[(n, NATION_NAMES.get(n, n)) for n in NATIONS],
        nation_names=NATION_NAMES,
        errors=errors or [],
        form=form,
        values=values or {},
    ), status


@bp.get("/admin/calendars")
@signed_in("admin")
def admin_calendars() -> Any:
    """Opening hours of the line and of every team: weeks, bank holidays, exceptions."""
    return _calendars()


@bp.post("/admin/calendars/<owner>/<action>")
@signed_in("admin")
def admin_calendar_change(owner: str, action: str) -> Any:
    """One change to one calendar (audited with who); a refusal keeps what was typed."""
    fields = CALENDAR_FORMS.get(action)
    if fields is None or not re.fullmatch(r"[a-z0-9_]{1,40}", owner):
        abort(404)
    form = {name: request.form.get(name, "").strip() for name in fields}
    try:
        _desk().change_calendar(viewer(), owner, action, form)
    except CallflowError as exc:
        errors = [(f"{owner}-{action}-{f}" if f else "", m) for f, m in field_errors(str(exc))]
        return _calendars(400, errors, f"{owner}-{action}", form)
    name = "The line" if owner == "line" else f"Team {owner}"
    flash(f"{name} {CALENDAR_DONE[action]}.")
    return redirect(url_for("console.admin_calendars") + f"#cal-{owner}", code=303)


@bp.get("/admin/<section>")
@signed_in("admin")
def admin_section(section: str) -> Any:
    """One section of the directory."""
    if section not in SECTIONS:
        abort(404)
    return _page(section)


@bp.post("/admin/<section>/<action>")
@signed_in("admin")
def admin_change(section: str, action: str) -> Any:
    """One change to the directory; removals ask for confirmation first."""
    fields = ACTIONS.get(section, {}).get(action)
    if fields is None:
        abort(404)
    form = {name: request.form.get(name, "").strip() for name in fields}
    if action in {"remove", "revoke"} and request.form.get("confirm") != "yes":
        return render_template(
            "console/admin_confirm.html",
            me=me(),
            section=section,
            sections=SECTIONS,
            action=action,
            values=form,
            key=next(iter(form.values()), ""),
        )
    desk, who = _desk(), viewer()
    try:
        shown = _apply(desk, who, section, action, form)
    except CallflowError as exc:
        values = {k: v for k, v in form.items() if k not in SECRET_FIELDS}
        return _page(
            section,
            400,
            errors=field_errors(str(exc), section),
            values=values,
            form=f"{section}-{action}",
        )
    if shown is not None:
        return _page(section, shown_once=shown)
    flash(_done(section, action, form))
    return redirect(url_for("console.admin_section", section=section), code=303)


def _apply(
    desk: AdminDesk, who: Any, section: str, action: str, form: dict[str, str]
) -> dict[str, str] | None:
    """Make the change; a secret to show once comes back as {what, for, value}."""
    values = request.form
    if section == "advisers":
        number = form["number"]
        if action == "add":
            adviser, pin = desk.add_adviser(
                who,
                number,
                form["name"],
                form["organisation"],
                form["phone"],
                form["email"],
                form["consent_to_act"] == "yes",
            )
            return {"what": "PIN", "for": f"adviser {number} ({adviser['name']})", "value": pin}
        if action == "issue_pin":
            return {"what": "PIN", "for": f"adviser {number}", "value": desk.issue_pin(who, number)}
        if action == "answers":
            answers = {k[7:]: v for k, v in values.items() if k.startswith("answer-")}
            desk.set_answers(who, number, answers)
        elif action == "unlock":
            desk.unlock_adviser(who, number)
        else:
            desk.remove_adviser(who, number)
    elif section == "agents":
        if action == "add":
            desk.add_agent(
                who, form["sees_id"], form["name"], form["reach"], form["welsh"] == "yes"
            )
        elif action == "remove":
            desk.remove_agent(who, form["sees_id"])
        elif action in {"welsh_on", "welsh_off"}:
            desk.set_agent_welsh(who, form["sees_id"], action == "welsh_on")
        else:
            desk.set_agent_active(who, form["sees_id"], action == "activate")
    elif section == "teams":
        if action == "remove":
            desk.remove_team(who, form["id"])
        elif action == "add":
            desk.add_team(
                who, form["id"], form["name"], form["handles"], form["numbers"], form["hours"]
            )
        else:
            desk.update_team(
                who,
                form["id"],
                form["name"],
                form["handles"],
                form["numbers"],
                form["hours"],
                form["welsh_numbers"],
            )
    elif section == "specialists":
        number = form["staff_number"]
        if action == "add":
            desk.add_specialist(
                who, number, form["name"], form["team"], form["reach"], form["welsh"] == "yes"
            )
        elif action == "move":
            desk.update_specialist(who, number, team=form["team"])
        elif action == "remove":
            desk.remove_specialist(who, number)
        else:
            desk.update_specialist(who, number, active=action == "activate")
    elif section == "officers":
        if action == "add":
            desk.add_officer(who, form["number"], form["name"], form["grade"])
        elif action == "grade":
            desk.set_officer_grade(who, form["number"], form["grade"])
        elif action == "remove":
            desk.remove_officer(who, form["number"])
        else:
            desk.set_officer_active(who, form["number"], action == "activate")
    elif section == "tokens":
        if action == "issue":
            token = desk.issue_token(who, form["role"], form["staff_id"], form["name"])
            return {"what": "API token", "for": form["staff_id"] or who.who, "value": token}
        desk.revoke_token(who, form["token_id"])
    elif section == "accounts":
        if action == "add":
            desk.add_account(
                who,
                form["username"],
                form["name"],
                form["role"],
                values.get("password", ""),
                form["sees_id"],
                form["specialist"],
            )
        elif action == "password":
            desk.set_password(who, form["username"], values.get("password", ""))
        else:
            desk.remove_account(who, form["username"])
    elif section == "needs":
        if action == "add":
            desk.add_need(who, form["id"], form["label"])
        else:
            desk.retire_need(who, form["id"])
    elif section == "purposes":
        if action == "add":
            desk.add_purpose(who, form["id"], form["words"], form["grade"], form["words_cy"])
        elif action == "grade":
            desk.set_purpose_grade(who, form["id"], form["grade"])
        else:
            desk.retire_purpose(who, form["id"])
    return None


DONE = {
    "add": "added",
    "answers": "has new security answers",
    "unlock": "unlocked",
    "remove": "removed",
    "activate": "activated",
    "deactivate": "deactivated",
    "update": "changed",
    "revoke": "revoked",
    "password": "has a new password; their sessions have ended",
    "welsh_on": "is offered Welsh calls first",
    "welsh_off": "is no longer offered Welsh calls first",
    "move": "moved to another team",
    "retire": "retired: it is no longer offered",
    "grade": "has a new grade",
}
NOUN = {
    "advisers": "Adviser",
    "agents": "Agent",
    "teams": "Team",
    "specialists": "Specialist",
    "officers": "Officer",
    "tokens": "Token",
    "accounts": "Account",
    "needs": "Reason",
    "purposes": "Purpose",
}


def _done(section: str, action: str, form: dict[str, str]) -> str:
    key = next(iter(form.values()), "")
    return f"{NOUN[section]} {key} {DONE[action]}."
