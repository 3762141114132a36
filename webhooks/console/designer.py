"""The flow designer's pages: flows, versions, publishing, approvals, the softphone."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from callflow.access import Viewer
from callflow.desks import DesignerDesk
from callflow.errors import (
    CallflowError,
    FlowValidationError,
    PublishRefused,
    ReplayChanges,
    SoftphoneError,
    UnknownFlowError,
)
from callflow.flowspec import parse_flow
from callflow.softphone import DEMO_TEXT, Softphone

from .base import SECURITY_HEADERS, bp, me, service, signed_in, viewer

# ---------------------------------------------------------------- the flow designer

# Mermaid draws its diagrams with a <style> element inside the SVG: this page alone allows
# inline styles (still no inline script, and nothing from outside the service).
DESIGNER_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


def designer_flows() -> list[dict[str, Any]]:
    """Every flow the service serves, with its version, problems and diagram."""
    return DesignerDesk(service()).flows()


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
        new_message="",
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


def _flow_page(
    name: str,
    *,
    source: str | None = None,
    tests: str | None = None,
    refused: str = "",
    checked: str = "",
    status: int = 200,
    note: str | None = None,
    replay: dict[str, Any] | None = None,
    note_error: str = "",
) -> Response:
    old, new = request.args.get("old", ""), request.args.get("new", "")
    flow = DesignerDesk(service()).flow(name, old, new)
    if flow is None:
        abort(404, description=f"There is no flow named {name}.")
    if source is not None:
        flow["source"] = source
    if tests is not None:
        flow["tests"] = tests
    outline_rows = flow.pop("outline")
    page = render_template(
        "console/flow.html",
        **flow,
        outline_rows=outline_rows,
        me=me(),
        refused=refused,
        problems=report_problems(refused, name),
        checked=checked,
        old=old,
        new=new,
        message=" ".join(m for c, m in _flashed() if c == "done"),
        note=note if note is not None else "",
        note_error=note_error,
        replay=replay,
    )
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DESIGNER_CSP
    return response


def _flashed() -> list[tuple[str, str]]:
    """What the last act said (its result travels in the session, never in the URL)."""
    flashed: list[Any] = get_flashed_messages(with_categories=True)
    return [(str(pair[0]), str(pair[1])) for pair in flashed]


#: A problem in a refusal report: "FILE:LINE: message".
PROBLEM = re.compile(r"^\s*(?P<file>[\w./-]+\.ya?ml):(?P<line>\d+):\s*(?P<message>.+)$", re.M)


def report_problems(report: str, name: str) -> list[dict[str, Any]]:
    """The file:line problems in a refusal, each marked as in the flow or in its tests."""
    return [
        {
            "file": m["file"],
            "line": int(m["line"]),
            "message": m["message"].strip(),
            "in_tests": m["file"].endswith(".test.yaml"),
        }
        for m in PROBLEM.finditer(report or "")
    ]


@bp.post("/designer/lint")
@signed_in("designer", "admin")
def designer_lint() -> Response:
    """The editor's live lint: the flow text's problems, each at its line (JSON)."""
    body = request.get_json(silent=True) or {}
    source, name = body.get("source"), body.get("name") or "new-flow"
    if not isinstance(source, str) or not isinstance(name, str) or len(source) > 200_000:
        return Response('{"error": "send {source, name}"}', 400, mimetype="application/json")
    label = f"{name}.yaml" if re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) else "new-flow.yaml"
    return jsonify(problems=DesignerDesk(service()).lint(source, label))


@bp.get("/designer/flow/<name>")
@signed_in("designer", "admin")
def designer_flow(name: str) -> Response:
    """One flow: its versions, the live one, a diff, publish and roll back."""
    return _flow_page(name)


@bp.post("/designer/flow/<name>/publish")
@signed_in("designer", "admin")
def designer_publish(name: str) -> Any:
    """Validate and test the text, then make it live on every worker."""

    source, tests = _posted_flow()
    note = request.form.get("message", "").strip()
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
            note=note,
        )
    if not note:
        # The design system's error summary, not the browser's "Please fill out this field".
        return _flow_page(
            name, source=source, tests=tests, status=422,
            note_error="Enter a revision note: what changed and why",
        )  # fmt: skip
    try:
        entry = svc.releases.publish(
            source,
            tests,
            viewer(),
            label=f"{name}.yaml",
            message=note,
            confirm=request.form.get("confirm", "") or False,
        )
    except ReplayChanges as exc:
        # The designer looks at the calls it would change, then confirms (or edits).
        return _flow_page(
            name, source=source, tests=tests, status=409, note=note, replay=exc.replay.to_dict()
        )
    except PublishRefused as exc:
        return _flow_page(
            name, source=source, tests=tests, refused=str(exc), status=422, note=note
        )
    if entry.get("pending"):
        done = (
            f"Version {entry['version']} passed its {entry['tests']} tests and waits for a "
            "second designer's approval before it goes live."
        )
    else:
        done = f"Published version {entry['version']}: {entry['tests']} tests passed."
        if entry.get("replay"):
            done += f" {entry['replay'][0].upper()}{entry['replay'][1:]}."
        done += _LIVE_SOON
    flash(done, "done")
    return redirect(url_for("console.designer_flow", name=name), code=303)


def _review(name: str, act: Callable[[str, Viewer], str]) -> Any:
    """Approve or reject a version waiting for approval; back to the flow's page."""

    version = request.form.get("version", "")
    try:
        done = act(version, viewer())
    except PublishRefused as exc:
        return _flow_page(name, refused=str(exc), status=422)
    except CallflowError as exc:
        return _flow_page(name, refused=str(exc), status=409)
    flash(done, "done")
    return redirect(url_for("console.designer_flow", name=name), code=303)


@bp.post("/designer/flow/<name>/approve")
@signed_in("designer", "admin")
def designer_approve(name: str) -> Any:
    """A second designer approves a protected flow's version: it goes live."""

    def approve(version: str, by: Viewer) -> str:
        entry = service().releases.approve(name, version, by)
        author = entry["author"]
        what = "the rollback to" if entry.get("approved") == "rollback" else "version"
        return f"Approved {what} {version} (asked for by {author}): it is live.{_LIVE_SOON}"

    return _review(name, approve)


@bp.post("/designer/flow/<name>/reject")
@signed_in("designer", "admin")
def designer_reject(name: str) -> Any:
    """Turn down (or withdraw) a version waiting for approval."""

    def reject(version: str, by: Viewer) -> str:
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

    source, tests = _posted_flow()
    svc = service()
    refused = ""
    try:
        name = parse_flow(source, "new-flow.yaml", svc.registry).name
        if name in svc.library.live_versions():
            refused = f"Flow {name} exists already: publish its new version from its own page."
    except FlowValidationError:
        name = ""
    if not refused:
        # A flow that does not parse has no name yet: its problems still name a file.
        label = f"{name or 'new-flow'}.yaml"
        try:
            entry = svc.releases.publish(
                source,
                tests,
                viewer(),
                label=label,
                message=request.form.get("message", ""),
            )
        except PublishRefused as exc:
            refused = str(exc)
        else:
            done = f"Published new flow {entry['flow']} version {entry['version']}."
            if entry.get("pending"):
                done = (
                    f"New flow {entry['flow']} version {entry['version']} waits for a second "
                    "designer's approval: what it does needs one."
                )
            else:
                done += _LIVE_SOON
            flash(done, "done")
            return redirect(url_for("console.designer_flow", name=entry["flow"]), 303)
    page = render_template(
        "console/designer.html",
        me=me(),
        flows=designer_flows(),
        new_source=source,
        new_tests=tests,
        new_message=request.form.get("message", ""),
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

    source, tests = _posted_flow()
    try:
        _, result = service().releases.check(source, tests, f"{name}.yaml")
    except PublishRefused as exc:
        return _flow_page(name, source=source, tests=tests, refused=str(exc), status=422)
    return _flow_page(name, source=source, tests=tests, checked=result.report())


@bp.post("/designer/flow/<name>/rollback")
@signed_in("designer", "admin")
def designer_rollback(name: str) -> Any:
    """Make an earlier version live again: first a page that asks for the reason and
    confirmation; a protected flow's rollback then waits for a second person (or, named as
    such, an emergency rollback to the last approved version goes live at once)."""
    svc = service()
    version = request.form.get("version") or None
    reason = request.form.get("reason", "").strip()
    emergency = request.form.get("emergency") == "yes"
    if emergency:
        version = None  # an emergency goes back only to the last approved version
    if request.form.get("confirm") != "yes" or not reason:
        errors = []
        if request.form.get("confirm") == "yes" and not reason:
            errors = [("reason", "Enter why you are rolling back")]
        return _rollback_page(name, version, reason, errors, status=422 if errors else 200)
    try:
        entry = svc.releases.rollback(name, viewer(), version, reason, emergency=emergency)
    except CallflowError as exc:
        return _rollback_page(name, version, reason, [("", str(exc))], status=409)
    if entry.get("pending"):
        done = (
            f"The rollback to version {entry['version']} waits for a second designer's "
            "approval: this flow is protected."
        )
    elif emergency:
        done = f"Emergency rollback: version {entry['version']} is live again.{_LIVE_SOON}"
    else:
        done = f"Version {entry['version']} is live again.{_LIVE_SOON}"
    flash(done, "done")
    return redirect(url_for("console.designer_flow", name=name), code=303)


def _rollback_page(
    name: str, version: str | None, reason: str, errors: list[tuple[str, str]], status: int
) -> Any:
    svc = service()
    releases = svc.releases
    if svc.library.live_versions().get(name) is None:
        abort(404, description=f"There is no flow named {name}.")
    protected = releases.is_protected(name)
    page = render_template(
        "console/flow_rollback.html",
        me=me(),
        name=name,
        version=version or "",
        live=svc.library.live_versions().get(name),
        reason=reason,
        errors=errors,
        protected=protected,
        last_approved=releases.last_approved(name) if protected else None,
    )
    return Response(page, status=status, mimetype="text/html")


@bp.post("/designer/softphone")
@signed_in("designer", "admin")
def softphone() -> Response:
    """Play a call against a flow in a sandbox of its own (never the live service).

    The browser sends the flow (a name: its live version; or ``source``: a text being
    edited) and every step the caller has taken so far; the answer is the transcript up to
    where the flow waits for the next step (or the end), and the state it is in.
    """

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
        played = Softphone(svc.settings.flows_dir, svc.registry, svc.sandbox).play(
            source.replace("\r\n", "\n"), body.get("steps", [])
        )
    except SoftphoneError as exc:
        response = jsonify(error=str(exc), status=422)
        response.status_code = 422
        return response
    return jsonify(played.to_dict())

