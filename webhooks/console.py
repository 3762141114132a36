"""Staff consoles: sign-in, the VSTRS agent's console and the specialist's console.

Pages are server-rendered; live panels are drawn by /console/static/console.js from the
role's JSON state, refreshed whenever the server-sent event stream (/console/events, fed
by the audit log in the store, so every worker sees every event) says something changed.
Every form carries the session's CSRF token; every page carries strict security headers.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)

from callflow.access import Viewer
from callflow.accounts import DEVICE_COOKIE_DAYS, ConsoleSession
from callflow.desks import AgentDesk, SpecialistDesk
from callflow.errors import CallflowError, DirectoryError
from callflow.handoff import HandOffError
from callflow.links import ServiceLinks
from callflow.softphone import DEMO_TEXT

from .extension import service

log = logging.getLogger(__name__)

bp = Blueprint(
    "console", __name__, url_prefix="/console", template_folder="templates", static_folder="static"
)

P = ParamSpec("P")
R = TypeVar("R")

HOME = {
    "vstrs_agent": "console.agent",
    "specialist": "console.specialist",
    "designer": "console.designer",
    "auditor": "console.auditor",
    "admin": "console.forbidden",
}
STREAM_SECONDS = 55
#: A browser where someone has signed in before: its sign-ins are throttled on their own.
DEVICE_COOKIE = "callflow_device"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def now() -> float:
    return service().clock.now()


@bp.after_request
def security_headers(response: Response) -> Response:
    """Strict headers on every console response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.before_request
def load_session() -> None:
    """Find the signed-in member of staff (if any) and check CSRF on every POST."""
    g.console = None
    token = session.get("t")
    if token:
        g.console = service().accounts.session(str(token), now())
        if g.console is None:
            session.pop("t", None)
    if request.method == "POST" and request.endpoint != "console.login":
        given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
        if g.console is None or not service().accounts.csrf_ok(g.console, given):
            log.warning("console %s: refused a POST without a valid CSRF token", request.path)
            abort(
                403,
                description="This form has expired or did not come from the console. Reload it.",
            )


def me() -> ConsoleSession:
    member: ConsoleSession = g.console
    return member


def signed_in(*roles: str) -> Callable[[Callable[P, R]], Callable[P, Any]]:
    """Only for a signed-in member of staff with one of ``roles``."""

    def decorate(view: Callable[P, R]) -> Callable[P, Any]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            if g.console is None:
                if request.accept_mimetypes.best == "application/json" or request.path.endswith(
                    "/state"
                ):
                    abort(401)
                return redirect(url_for("console.login", next=request.path))
            if roles and g.console.role not in roles:
                log.warning(
                    "console %s: %s %s refused", request.path, g.console.role, g.console.username
                )
                abort(403, description="This console is not for your role.")
            return view(*args, **kwargs)

        return wrapper

    return decorate


# ---------------------------------------------------------------- signing in


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with a username and password (rate limited)."""
    error = ""
    if request.method == "POST":
        expected = session.get("login_csrf", "")
        if not expected or request.form.get("csrf_token") != expected:
            abort(403, description="The sign-in form has expired. Reload and try again.")
        username = request.form.get("username", "").strip().lower()
        password = request.form.get("password", "")
        # The client's address: behind CALLFLOW_TRUSTED_PROXIES proxies, werkzeug's
        # ProxyFix has put the one they saw here (see create_app).
        address = request.remote_addr or "-"
        attempt = service().accounts.sign_in(
            username, password, address, now(), request.cookies.get(DEVICE_COOKIE)
        )
        member, error = attempt.session, attempt.error
        if member is not None:
            session.clear()
            session["t"] = member.token
            session.permanent = False
            log.info("console: %s signed in (%s)", member.username, member.role)
            target = request.args.get("next", "")
            if not target.startswith("/console/") or target.startswith("//"):
                target = url_for(HOME[member.role])
            response = redirect(target, code=303)
            if attempt.device:
                response.set_cookie(
                    DEVICE_COOKIE,
                    attempt.device,
                    max_age=DEVICE_COOKIE_DAYS * 24 * 3600,
                    path="/console/",
                    httponly=True,
                    samesite="Strict",
                    secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
                )
            return response
        log.warning("console: sign-in refused for %r: %s", username[:40], error)
    import secrets

    session["login_csrf"] = secrets.token_urlsafe(24)
    status = 401 if error else 200
    return render_template("console/login.html", error=error, csrf=session["login_csrf"]), status


@bp.post("/logout")
@signed_in()
def logout() -> Any:
    """Sign out."""
    service().accounts.sign_out(me().token)
    session.clear()
    return redirect(url_for("console.login"), code=303)


@bp.get("/")
@signed_in()
def home() -> Any:
    """Each role's own console."""
    return redirect(url_for(HOME[me().role]))


@bp.get("/forbidden")
@signed_in()
def forbidden() -> Any:
    """Roles whose console is still to come."""
    return render_template(
        "console/message.html",
        title="No console yet",
        message="There is no console for your role yet.",
    ), 200


# ---------------------------------------------------------------- the VSTRS agent


def viewer() -> Viewer:
    """The signed-in member of staff, as the read models scope answers to them."""
    member = me()
    return Viewer(member.role, member.sees_id, member.team, member.name)


def _current_call() -> dict[str, Any] | None:
    return AgentDesk(service()).current_call(viewer())


def agent_state() -> dict[str, Any]:
    """What the agent's console shows."""
    return AgentDesk(service()).state(viewer())


@bp.get("/agent")
@signed_in("vstrs_agent")
def agent() -> Any:
    """The VSTRS agent's console."""
    return _agent_page()


def _agent_page(
    errors: dict[str, str] | None = None, form_error: str = "", status: int = 200
) -> Any:
    svc = service()
    return (
        render_template(
            "console/agent.html",
            me=me(),
            availability=svc.staff.availability(me().sees_id)["status"],
            teams=[t for t in svc.staff.teams() if t.active],
            errors=errors or {},
            form_error=form_error,
            form=request.form if request.method == "POST" else {},
        ),
        status,
    )


@bp.get("/agent/state")
@signed_in("vstrs_agent")
def agent_state_json() -> Response:
    return jsonify(agent_state())


@bp.post("/agent/availability")
@signed_in("vstrs_agent")
def set_availability() -> Any:
    status = request.form.get("status", "")
    try:
        service().staff.set_availability(me().sees_id, status, now())
    except DirectoryError:
        return _agent_page(form_error="Choose available or away.", status=422)
    return redirect(url_for("console.agent"), code=303)


def _links() -> ServiceLinks:
    return ServiceLinks(service().settings.public_base_url or request.host_url)


@bp.post("/agent/handoff")
@signed_in("vstrs_agent")
def request_handoff() -> Any:
    """The hand-off form: field errors are shown beside each field."""
    record = _current_call()
    if record is None:
        return _agent_page(form_error="You have no call to hand off.", status=409)
    form = request.form
    body = {
        "team": form.get("team", ""),
        "customer": {"name": form.get("customer_name", ""), "reference": form.get("reference", "")},
        "issue": form.get("issue", ""),
        "callback": {
            "urgent": form.get("urgent") == "yes",
            "turnaround": form.get("turnaround", ""),
        },
        "authorisation": {
            "type": form.get("auth_type", ""),
            "date": form.get("auth_date", ""),
            "reference": form.get("auth_reference", ""),
        },
    }
    try:
        service().handoffs.request(record["call_sid"], me().sees_id, body, _links())
    except HandOffError as exc:
        return _agent_page(errors=exc.errors, form_error=str(exc), status=exc.status)
    except CallflowError as exc:
        return _agent_page(form_error=f"The transfer could not start: {exc}", status=503)
    return redirect(url_for("console.agent"), code=303)


@bp.post("/agent/handoff/<handoff_id>/<action>")
@signed_in("vstrs_agent")
def handoff_action(handoff_id: str, action: str) -> Any:
    """Cancel a hand-off in progress, or hand over after the brief (the agent leaves)."""
    svc = service()
    doc = svc.handoffs.get(handoff_id)
    if doc is None or doc["agent_sees_id"] != me().sees_id or action not in {"cancel", "complete"}:
        abort(404)
    try:
        if action == "cancel":
            svc.handoffs.cancel(handoff_id, me().sees_id, _links())
        else:
            svc.handoffs.complete(handoff_id, _links())
    except HandOffError as exc:
        return _agent_page(form_error=str(exc), status=exc.status)
    return redirect(url_for("console.agent"), code=303)


# ---------------------------------------------------------------- the specialist


def specialist_state() -> dict[str, Any]:
    """What the specialist's console shows: the latest hand-off to the team, and the banner."""
    return SpecialistDesk(service()).state(viewer())


@bp.get("/specialist")
@signed_in("specialist")
def specialist() -> Any:
    """The specialist's console."""
    team = service().staff.team(me().team)
    return render_template("console/specialist.html", me=me(), team=team)


@bp.get("/specialist/state")
@signed_in("specialist")
def specialist_state_json() -> Response:
    return jsonify(specialist_state())


# ---------------------------------------------------------------- live updates


def _visible(member: ConsoleSession, entry: dict[str, Any], calls: dict[str, bool]) -> bool:
    if member.role == "specialist":
        return bool(entry.get("team")) and entry.get("team") == member.team
    if member.role == "vstrs_agent":
        call_sid = entry.get("call_sid")
        if not call_sid:
            return False
        if call_sid not in calls:
            record = service().vstrs.get(call_sid)
            calls[call_sid] = bool(record and member.sees_id in record.get("agents", []))
        return calls[call_sid] or entry.get("agent") == member.sees_id
    return member.role == "admin"


@bp.get("/events")
@signed_in()
def events() -> Response:
    """Server-sent events: a note each time something this member of staff sees changes.

    Event ids are audit entry ids, so a reconnecting browser (Last-Event-ID) misses nothing.
    """
    member = me()
    store = service().store
    last = request.headers.get("Last-Event-ID") or store.last_audit_id()

    def stream() -> Iterator[str]:
        cursor = last
        calls: dict[str, bool] = {}
        yield "retry: 1000\n\n"
        deadline = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < deadline:
            try:
                wait = max(min(5.0, deadline - time.monotonic()), 0.05)
                entries = store.audit_after(cursor, block_ms=int(wait * 1000))
            except CallflowError as exc:
                log.warning("console events: %s", exc)
                yield ": store unavailable\n\n"
                return
            for entry in entries:
                cursor = entry["id"]
                if _visible(member, entry, calls):
                    note = {
                        k: entry.get(k) for k in ("kind", "call_sid", "handoff", "outcome", "at")
                    }
                    yield f"id: {cursor}\nevent: change\ndata: {json.dumps(note)}\n\n"
                else:
                    yield f"id: {cursor}\n\n"
            if not entries:
                yield ": keep-alive\n\n"

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"
    return response


# ---------------------------------------------------------------- the flow designer

# Mermaid draws its diagrams with a <style> element inside the SVG: this page alone allows
# inline styles (still no inline script, and nothing from outside the service).
DESIGNER_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


def designer_flows() -> list[dict[str, Any]]:
    """Every flow the service serves, with its version, problems and diagram."""
    from callflow.graph import mermaid

    library = service().library
    library.refresh()
    released = service().releases.live_map()
    rows: list[dict[str, Any]] = []
    for name, version in library.live_versions().items():
        flow = library.version(version)
        rows.append(
            {
                "name": name,
                "version": version,
                "published": released.get(name) == version,
                "path": flow.path,
                "description": flow.description,
                "states": len(flow.states),
                "problems": [str(p) for p in library.problems.get(flow.path, [])],
                "diagram": mermaid(flow),
            }
        )
    live_paths = {row["path"] for row in rows}
    for path, problems in sorted(library.problems.items()):
        if path not in live_paths:
            rows.append(
                {
                    "name": path.rsplit("/", 1)[-1],
                    "version": None,
                    "published": False,
                    "path": path,
                    "description": "",
                    "states": 0,
                    "problems": [str(p) for p in problems],
                    "diagram": "",
                }
            )
    return rows


@bp.get("/designer")
@signed_in("designer", "admin")
def designer() -> Any:
    """Flows, their versions and lint results, diagrams, and a softphone to try them."""
    page = render_template(
        "console/designer.html",
        me=me(),
        flows=designer_flows(),
        new_source=NEW_FLOW,
        new_tests=NEW_TESTS,
        new_refused="",
        demo_text=DEMO_TEXT,
    )
    response = Response(page)
    response.headers["Content-Security-Policy"] = DESIGNER_CSP
    return response


def _posted_flow() -> tuple[str, str]:
    """The flow text and its tests from a designer's form (browsers send CRLF line ends)."""
    source, tests = (request.form.get(f, "").replace("\r\n", "\n") for f in ("source", "tests"))
    return source, tests


#: Said after a version goes live (the check interval is the library's default).
_LIVE_SOON = (
    " Every worker serves it to new calls within seconds; calls in progress keep their version."
)


def _when(at: float | None) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""


def _release_rows(name: str) -> list[dict[str, Any]]:
    return [{**row, "when": _when(row.get("at"))} for row in service().releases.versions(name)]


def _flow_page(
    name: str,
    *,
    source: str | None = None,
    tests: str | None = None,
    refused: str = "",
    checked: str = "",
    status: int = 200,
) -> Response:
    from callflow.errors import CallflowError

    svc = service()
    library = svc.library
    library.refresh()
    library.check_releases(force=True)
    live = library.live_versions().get(name)
    if live is None:
        abort(404, description=f"There is no flow named {name}.")
    old, new = request.args.get("old", ""), request.args.get("new", "")
    diff, diff_error = "", ""
    if old and new:
        try:
            diff = svc.releases.diff(name, old, new) or "The two versions are the same."
        except CallflowError as exc:
            diff_error = str(exc)
    released = svc.releases.release(name)
    pending = [
        {**row, "when": _when(row.get("at"))} for row in svc.releases.pending(name)
    ]
    page = render_template(
        "console/flow.html",
        protected=svc.releases.is_protected(name),
        pending=pending,
        me=me(),
        name=name,
        live=live,
        published=bool(released and released["live"] == live),
        versions=_release_rows(name),
        history=list(reversed(released["history"])) if released else [],
        source=source if source is not None else svc.releases.source(name, live),
        tests=tests if tests is not None else (svc.releases.tests_source(name, live) or ""),
        refused=refused,
        checked=checked,
        old=old,
        new=new,
        diff=diff,
        diff_error=diff_error,
        check_seconds=svc.settings.flow_release_check_seconds,
        message=request.args.get("done", ""),
    )
    return Response(page, status=status, mimetype="text/html")


@bp.get("/designer/flow/<name>")
@signed_in("designer", "admin")
def designer_flow(name: str) -> Response:
    """One flow: its versions, the live one, a diff, publish and roll back."""
    return _flow_page(name)


@bp.post("/designer/flow/<name>/publish")
@signed_in("designer", "admin")
def designer_publish(name: str) -> Any:
    """Validate and test the text, then make it live on every worker."""
    from callflow.errors import FlowValidationError
    from callflow.flowspec import parse_flow
    from callflow.releases import PublishRefused

    source, tests = _posted_flow()
    svc = service()
    try:
        named = parse_flow(source, f"{name}.yaml", svc.registry).name
    except FlowValidationError:
        named = name  # publishing reports the problems in full
    if named != name:
        return _flow_page(
            name,
            source=source,
            tests=tests,
            refused=f"This page publishes flow {name}; the text is flow {named}.",
            status=422,
        )
    try:
        entry = svc.releases.publish(source, tests, me().username, label=f"{name}.yaml")
    except PublishRefused as exc:
        return _flow_page(name, source=source, tests=tests, refused=str(exc), status=422)
    if entry.get("pending"):
        done = (
            f"Version {entry['version']} passed its {entry['tests']} tests and waits for a "
            "second designer's approval before it goes live."
        )
    else:
        done = f"Published version {entry['version']}: {entry['tests']} tests passed."
        done += _LIVE_SOON
    return redirect(url_for("console.designer_flow", name=name, done=done), code=303)


def _review(name: str, act: Callable[[str, str], str]) -> Any:
    """Approve or reject a version waiting for approval; back to the flow's page."""
    from callflow.releases import PublishRefused

    version = request.form.get("version", "")
    try:
        done = act(version, me().username)
    except PublishRefused as exc:
        return _flow_page(name, refused=str(exc), status=422)
    except CallflowError as exc:
        return _flow_page(name, refused=str(exc), status=409)
    return redirect(url_for("console.designer_flow", name=name, done=done), code=303)


@bp.post("/designer/flow/<name>/approve")
@signed_in("designer", "admin")
def designer_approve(name: str) -> Any:
    """A second designer approves a protected flow's version: it goes live."""

    def approve(version: str, by: str) -> str:
        entry = service().releases.approve(name, version, by)
        author = entry["author"]
        return f"Approved version {version} (written by {author}): it is live.{_LIVE_SOON}"

    return _review(name, approve)


@bp.post("/designer/flow/<name>/reject")
@signed_in("designer", "admin")
def designer_reject(name: str) -> Any:
    """Turn down (or withdraw) a version waiting for approval."""

    def reject(version: str, by: str) -> str:
        service().releases.reject(name, version, by)
        return f"Version {version} will not go live."

    return _review(name, reject)


NEW_FLOW = """flow: new_flow
description: What this line is for.
initial: welcome
defaults: {voice: Polly.Amy, language: en-GB}
states:
  welcome:
    twiml:
      - say: "Hello."
      - hangup
"""
NEW_TESTS = """flow: new_flow
tests:
  - name: the caller is greeted
    steps:
      - hear: "Hello."
    end: welcome
"""


@bp.post("/designer/new")
@signed_in("designer", "admin")
def designer_new() -> Any:
    """Publish a flow that does not exist yet (tested first, like any publish)."""
    from callflow.errors import FlowValidationError
    from callflow.flowspec import parse_flow
    from callflow.releases import PublishRefused

    source, tests = _posted_flow()
    svc = service()
    refused = ""
    try:
        name = parse_flow(source, "new.yaml", svc.registry).name
        if name in svc.library.live_versions():
            refused = f"Flow {name} exists already: publish its new version from its own page."
    except FlowValidationError:
        name = ""
    if not refused:
        try:
            entry = svc.releases.publish(source, tests, me().username, label=f"{name}.yaml")
        except PublishRefused as exc:
            refused = str(exc)
        else:
            done = f"Published new flow {entry['flow']} version {entry['version']}."
            done += _LIVE_SOON
            return redirect(url_for("console.designer_flow", name=entry["flow"], done=done), 303)
    page = render_template(
        "console/designer.html",
        me=me(),
        flows=designer_flows(),
        new_source=source,
        new_tests=tests,
        new_refused=refused,
        demo_text=DEMO_TEXT,
    )
    response = Response(page, status=422, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DESIGNER_CSP
    return response


@bp.post("/designer/flow/<name>/check")
@signed_in("designer", "admin")
def designer_check(name: str) -> Response:
    """Validate the text and run its tests, publishing nothing: the report and coverage."""
    from callflow.releases import PublishRefused

    source, tests = _posted_flow()
    try:
        _, result = service().releases.check(source, tests, f"{name}.yaml")
    except PublishRefused as exc:
        return _flow_page(name, source=source, tests=tests, refused=str(exc), status=422)
    return _flow_page(name, source=source, tests=tests, checked=result.report())


@bp.post("/designer/flow/<name>/rollback")
@signed_in("designer", "admin")
def designer_rollback(name: str) -> Any:
    """Make an earlier version live again."""
    from callflow.errors import CallflowError

    version = request.form.get("version") or None
    try:
        entry = service().releases.rollback(name, me().username, version)
    except CallflowError as exc:
        return _flow_page(name, refused=str(exc), status=409)
    done = f"Version {entry['version']} is live again."
    done += _LIVE_SOON
    return redirect(url_for("console.designer_flow", name=name, done=done), code=303)


# ---------------------------------------------------------------- meetings


@bp.get("/meetings")
@signed_in("specialist", "admin")
def meetings() -> str:
    """Face-to-face meetings, their calls and what the customers said."""
    from datetime import UTC, datetime

    def when(at: float | None) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""

    svc = service()
    rows = []
    for meeting in svc.meetings.all():
        shown = svc.meetings.public(meeting)
        shown["next_call"] = when(meeting.get("next_call_at"))
        shown["calls"] = [
            {"at": when(a["at"]), "result": a["result"] or "in progress"}
            for a in meeting["attempts"]
        ]
        rows.append(shown)
    return render_template("console/meetings.html", me=me(), meetings=rows)


@bp.post("/designer/softphone")
@signed_in("designer", "admin")
def softphone() -> Response:
    """Play a call against a flow in a sandbox of its own (never the live service).

    The browser sends the flow (a name: its live version; or ``source``: a text being
    edited) and every step the caller has taken so far; the answer is the transcript up to
    where the flow waits for the next step (or the end), and the state it is in.
    """
    from callflow.errors import UnknownFlowError
    from callflow.softphone import Softphone, SoftphoneError

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="the body must be a JSON object")
    svc = service()
    source = body.get("source")
    if not isinstance(source, str):
        name = str(body.get("flow") or "")
        try:
            source = svc.library.live(name).source
        except UnknownFlowError:
            abort(404, description=f"There is no flow named {name[:64]}.")
    try:
        played = Softphone(svc.settings.flows_dir, svc.registry).play(
            source.replace("\r\n", "\n"), body.get("steps", [])
        )
    except SoftphoneError as exc:
        response = jsonify(error=str(exc), status=422)
        response.status_code = 422
        return response
    return jsonify(played.to_dict())


# ---------------------------------------------------------------- the auditor


def _period() -> tuple[Any, Any, str | None]:
    from datetime import date, timedelta

    from callflow.directory import ORGANISATIONS
    from callflow.reports import today_utc

    def parse(name: str) -> Any:
        text = request.args.get(name, "")
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            abort(400, description=f"{name}: a date like 2026-11-23")

    until = parse("to") or today_utc(now())
    since = parse("from") or until - timedelta(days=27)
    org = request.args.get("org") or None
    if org is not None and org not in ORGANISATIONS:
        abort(400, description="org: one of the four organisations")
    return since, until, org


def auditor_figures(since: Any, until: Any, org: str | None) -> dict[str, Any]:
    from callflow.reports import figures, in_period

    svc = service()
    entries = [e for e in svc.audit.all_entries() if in_period(e, since, until, org)]
    grants = [
        g
        for g in svc.store.list_docs("grants")
        if (org is None or g["organisation"] == org)
        and since.isoformat() <= _day_of(g["started_at"]) <= until.isoformat()
    ]
    return figures(entries, grants, svc.assurance.report(org, since, until))


def _day_of(at: float) -> str:
    from callflow.reports import today_utc

    return today_utc(at).isoformat()


def _charts(data: dict[str, Any]) -> list[Any]:
    from callflow.reports import bar_chart

    share = {
        org: {"hand-offs per verified call": value} for org, value in data["handoff_share"].items()
    }
    durations = {k: {"grants": v} for k, v in data["grant_durations"].items()}
    assurance = {
        row["organisation_name"]: {
            "passed": row["passed"],
            "failed": row["failed"],
            "outstanding": row["outstanding"],
        }
        for row in data["assurance"]
    }
    return [
        bar_chart("Verifications per day, by outcome", data["verifications"]),
        bar_chart("Lockouts per day", {d: {"lockouts": n} for d, n in data["lockouts"].items()}),
        bar_chart("Hand-offs per week, by organisation", data["handoffs_by_org_week"]),
        bar_chart("Hand-offs per week, by team", data["handoffs_by_team_week"]),
        bar_chart("Hand-off share of verified calls", share),
        bar_chart("Grant durations", durations, ordered=True),
        bar_chart(
            "Assurance results", assurance, ["passed", "failed", "outstanding"], ordered=True
        ),
    ]


def _auditor_page(printable: bool) -> Any:
    from callflow.directory import ORGANISATIONS

    since, until, org = _period()
    data = auditor_figures(since, until, org)
    return render_template(
        "console/auditor.html",
        me=me(),
        since=since,
        until=until,
        org=org,
        organisations=ORGANISATIONS,
        charts=_charts(data),
        assurance=data["assurance"],
        cases=service().assurance.cases(org),
        printable=printable,
    )


@bp.get("/auditor")
@signed_in("auditor", "admin")
def auditor() -> Any:
    """Charts of the period, the assurance cases, exports and printable reports."""
    return _auditor_page(printable=False)


@bp.get("/auditor/report")
@signed_in("auditor", "admin")
def auditor_report() -> Any:
    """A printable report for one organisation (or all) and a period."""
    return _auditor_page(printable=True)


@bp.get("/auditor/audit.csv")
@signed_in("auditor", "admin")
def auditor_export() -> Response:
    """The period's audit entries as CSV."""
    from callflow.reports import audit_csv, in_period

    since, until, org = _period()
    rows = [e for e in service().audit.all_entries() if in_period(e, since, until, org)]
    response = Response(audit_csv(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{since}-{until}.csv"'
    return response


@bp.post("/auditor/case/<case_id>")
@signed_in("auditor", "admin")
def auditor_case(case_id: str) -> Any:
    """Move an assurance case on (evidence seen or missing, closed)."""
    from callflow.assurance import AssuranceError

    try:
        service().assurance.update(
            case_id, request.form.get("state", ""), me().username, request.form.get("note", "")
        )
    except AssuranceError as exc:
        abort(409, description=str(exc))
    return redirect(url_for("console.auditor"), code=303)
