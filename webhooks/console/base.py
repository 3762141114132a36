"""What every console page shares: the blueprint, sign-in, sessions, the live event stream.

Each desk module (``admin``, ``agent``, ...) imports what it needs from here, never the
package; the package imports the desks so their routes are on the blueprint.
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
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)

from callflow.access import Viewer
from callflow.accounts import DEVICE_COOKIE_DAYS, ConsoleSession
from callflow.desks import Feed
from callflow.errors import CallflowError
from callflow.links import ServiceLinks

from ..extension import service

__all__ = [
    "DEVICE_COOKIE",
    "SECURITY_HEADERS",
    "STREAM_SECONDS",
    "bp",
    "me",
    "now",
    "service",
    "signed_in",
    "viewer",
]

log = logging.getLogger(__name__)

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="../templates",
    static_folder="../static",
)

P = ParamSpec("P")
R = TypeVar("R")

HOME = {
    "vstrs_agent": "console.agent",
    "specialist": "console.specialist",
    "supervisor": "console.supervisor",
    "designer": "console.designer",
    "auditor": "console.auditor",
    "admin": "console.admin",
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


@bp.app_template_filter("uk_time")
def uk_time(at: float | None) -> str:
    """A time as UK staff read it: ``Mon 7 Dec 14:05`` (UK time)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not at:
        return ""
    return datetime.fromtimestamp(float(at), ZoneInfo("Europe/London")).strftime("%a %-d %b %H:%M")


@bp.context_processor
def signed_in_as() -> dict[str, Any]:
    """What the header shows of the member of staff (a specialist's team by its name),
    and the line's emergency closure while it lasts: every console shows it."""
    member = g.get("console")
    if member is None:
        return {"team_name": "", "line_closure": None}
    svc = service()
    closure = svc.staff.closure(now())  # kept a few seconds in this process
    team = svc.staff.team(member.team) if member.team else None
    return {
        "team_name": (team.name if team else member.team) if member.team else "",
        "line_closure": closure,
    }


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
    typed = request.form.get("username", "")[:40] if request.method == "POST" else ""
    page = render_template(
        "console/login.html", error=error, csrf=session["login_csrf"], username=typed
    )
    return page, status


@bp.post("/logout")
@signed_in()
def logout() -> Any:
    """Sign out; during a call (an agent's, or a specialist's hand-off) it asks first."""
    if request.form.get("confirm") != "yes":
        busy = _on_a_call()
        if busy:
            return render_template("console/sign_out.html", me=me(), busy=busy), 200
    service().accounts.sign_out(me().token)
    session.clear()
    return redirect(url_for("console.login"), code=303)


def _on_a_call() -> str:
    """What signing out now would walk away from, in words; '' when nothing."""
    svc, member = service(), me()
    if member.role == "vstrs_agent":
        state = svc.staff.availability(member.sees_id, now())["state"]
        return {
            "ringing": "A caller is being put through to you.",
            "on_call": "You are on a call.",
            "after_call": "You are in after-call work: the call's outcome may not be saved.",
        }.get(state, "")
    if (
        member.role == "specialist"
        and member.specialist
        and svc.staff.specialist_held_by(member.specialist)
    ):
        return "You have a hand-off under way."
    return ""


@bp.get("/")
@signed_in()
def home() -> Any:
    """Each role's own console."""
    return redirect(url_for(HOME[me().role]))


def viewer() -> Viewer:
    """The signed-in member of staff, as the read models scope answers to them."""
    member = me()
    return Viewer(
        member.role,
        member.sees_id,
        member.team,
        member.name,
        member.username,
        specialist=member.specialist,
    )



def _links() -> ServiceLinks:
    return service().links(request.host_url)



# ---------------------------------------------------------------- live updates


@bp.get("/events")
@signed_in()
def events() -> Response:
    """Server-sent events: a note each time something this member of staff sees changes
    (callflow.desks.Feed decides what they may hear of).

    Event ids are audit entry ids, so a reconnecting browser (Last-Event-ID) misses nothing.
    """
    feed = Feed.start(service(), viewer(), request.headers.get("Last-Event-ID"))

    def stream() -> Iterator[str]:
        yield "retry: 1000\n\n"
        deadline = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < deadline:
            try:
                wait = max(min(5.0, deadline - time.monotonic()), 0.05)
                entries = feed.next(int(wait * 1000))
            except CallflowError as exc:
                log.warning("console events: %s", exc)
                yield ": store unavailable\n\n"
                return
            for entry_id, note in entries:
                if note is not None:
                    yield f"id: {entry_id}\nevent: change\ndata: {json.dumps(note)}\n\n"
                else:
                    yield f"id: {entry_id}\n\n"
            if not entries:
                yield ": keep-alive\n\n"

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"
    return response


# The desks' pages register on the blueprint above.
