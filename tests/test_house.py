"""The house rules (ARCHITECTURE.md, docs/architecture.md "Floors"), checked on the code:
no import circle counting lazy imports, the engine never names the web layer, every
exception in one module with no HTTP status, one table per entry point, one way to build
links, and the voice edge deciding nothing."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

import callflow.errors as errors_module
from callflow.call_ends import LEG_ROLES, CallEnds
from callflow.cli.common import EXIT, EXIT_UNAVAILABLE, exit_for
from callflow.errors import (
    CallflowError,
    ConfigError,
    HandOffConflict,
    HandOffError,
    HandOffForbidden,
    HandOffInvalid,
    Malformed,
    StoreUnavailable,
    Unauthenticated,
    UnknownHandOff,
)
from callflow.links import ServiceLinks
from callflow.service import Callflow
from tests.conftest import AUTH_TOKEN, BASE_URL, ROOT, Caller, sign
from webhooks.answers import STATUS, status_of

PACKAGES = ("callflow", "webhooks")
#: Third-party imports allowed inside functions: optional or heavy at start-up.
OPTIONAL = {"graphviz", "twilio", "werkzeug", "gunicorn", "zoneinfo", "datetime", "io",
            "logging", "time", "flask"}  # fmt: skip


def modules(package: str) -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = (path, ast.parse(path.read_text()))
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    """Who imports whom in ``package``, imports inside functions counted (TYPE_CHECKING
    blocks not), ``from . import x`` naming the package as well (as the shared tool does)."""
    found = modules(package)

    def resolve(name: str) -> str | None:
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {name: set() for name in found}
    for name, (path, tree) in found.items():
        skip = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base_parts = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                base = (
                    ".".join(base_parts + ([node.module] if node.module else []))
                    if node.level
                    else node.module or ""
                )
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for target in targets:
                resolved = resolve(target)
                if resolved and resolved != name:
                    edges[name].add(resolved)
    return edges


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected parts of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[set[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = set()
                while True:
                    top = stack.pop()
                    on.discard(top)
                    part.add(top)
                    if top == node:
                        break
                if len(part) > 1:
                    found.append(part)
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_circle_counting_lazy_imports() -> None:
    for package in PACKAGES:
        assert circles(import_graph(package)) == [], package


def test_no_project_import_inside_a_function() -> None:
    """Imports inside functions only for optional dependencies, never the project's own."""
    lazy = []
    for package in PACKAGES:
        for _name, (path, tree) in modules(package).items():
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    if (isinstance(node, ast.ImportFrom) and (
                        node.level or (node.module or "").split(".")[0] in PACKAGES
                    )) or (isinstance(node, ast.Import) and any(
                        a.name.split(".")[0] in PACKAGES for a in node.names
                    )):
                        lazy.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert lazy == []


def test_the_engine_never_names_the_web_layer() -> None:
    named = []
    for _name, (path, tree) in modules("callflow").items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                    node.module or ""
                ]
                if any(t.split(".")[0] == "webhooks" for t in targets):
                    named.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith(("webhooks:", "webhooks."))
            ):
                named.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert named == []


def test_every_exception_class_lives_in_errors() -> None:
    """The simulator's stand-ins for Twilio's failures may stay in the simulator."""
    elsewhere = []
    for package in PACKAGES:
        for name, (path, tree) in modules(package).items():
            if name == "callflow.errors" or name.startswith("callflow.simulator"):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                    (isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception"))
                     or b.id in vars(errors_module)))
                    for b in node.bases
                ):
                    elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert elsewhere == []


def test_the_errors_docstring_draws_every_class() -> None:
    drawn = set(re.findall(r"^[|+\- ]*([A-Z][A-Za-z]+)\s", errors_module.__doc__ or "", re.M))
    for name, value in vars(errors_module).items():
        if isinstance(value, type) and issubclass(value, Exception):
            assert name in drawn, name


def test_no_domain_error_carries_an_http_status() -> None:
    for value in vars(errors_module).values():
        if isinstance(value, type) and issubclass(value, CallflowError):
            error = value.__new__(value)
            assert not hasattr(error, "status"), value
    # A hand-off error says what kind of refusal it is; the entry points say the status.
    assert [status_of(e("x")) for e in (HandOffInvalid, HandOffConflict, UnknownHandOff,
                                        HandOffForbidden)] == [422, 409, 404, 403]  # fmt: skip
    assert status_of(HandOffError("x")) is None  # a bare one is not answerable: a 500


def test_each_entry_point_maps_errors_in_one_table() -> None:
    assert status_of(StoreUnavailable("down")) == 503
    assert status_of(Unauthenticated("who?")) == 401
    assert status_of(Malformed("not an object")) == 400
    assert len({kind for kind, _ in STATUS}) == len(STATUS)
    assert exit_for(StoreUnavailable("down"))[0] == EXIT_UNAVAILABLE
    assert exit_for(Unauthenticated("who?")) == (1, EXIT[0][2])
    assert exit_for(CallflowError("anything")) == (1, "")


def test_links_are_built_one_way() -> None:
    assert ServiceLinks.at("https://public.example/", "http://asked").base == (
        "https://public.example"
    )
    assert ServiceLinks.at(None, "http://asked/").base == "http://asked"
    with pytest.raises(ConfigError):
        ServiceLinks.at(None, None)
    links = ServiceLinks("https://svc")
    assert links.voice_url(flow="officer_check", language="cy", relay=True) == (
        "https://svc/voice/incoming?flow=officer_check&lang=cy&relay=1"
    )
    constructed = []
    for package in PACKAGES:
        for name, (path, tree) in modules(package).items():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "ServiceLinks"
                    and name != "callflow.links"
                ):
                    constructed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert constructed == []


def test_voice_has_no_role_dispatch() -> None:
    source = (ROOT / "webhooks" / "voice.py").read_text()
    for word in ('"agent"', '"specialist"', '"meeting"', '"callback"', "caller_ended",
                 "leg_ended", "call_ended"):  # fmt: skip
        assert word not in source, word


def test_flask_routes_lists_the_voice_routes(app: Flask) -> None:
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    for path in ("/voice/incoming", "/voice/step", "/voice/status", "/voice/hold",
                 "/voice/conference", "/voice/leg"):  # fmt: skip
        assert path in rules and rules[path].methods and "POST" in rules[path].methods
    listed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "webhooks:create_app", "routes"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "/voice/incoming" in listed.stdout


def test_a_voice_request_reaching_flask_is_answered_the_same(
    app: Flask, client: FlaskClient, caller: Caller
) -> None:
    """Should the WSGI layer not be in front, Flask's view answers exactly as it would."""
    in_front = caller.start()
    flask_only = app.test_client()
    app.wsgi_app = app.wsgi_app.fallback  # type: ignore[attr-defined]
    url = f"{BASE_URL}/voice/incoming"
    form = {"CallSid": "CA" + "7" * 32, "From": "+441632960001", "To": "+441632960999",
            "CallStatus": "ringing"}  # fmt: skip
    answered = flask_only.post("/voice/incoming", data=form,
                               headers={"X-Twilio-Signature": sign(url, form, AUTH_TOKEN)})  # fmt: skip
    assert answered.status_code == 200 and answered.mimetype == "text/xml"
    assert answered.data.split(b"<Gather")[0] == ET_head(in_front)
    forged = flask_only.post("/voice/incoming", data=form, headers={"X-Twilio-Signature": "x"})
    assert forged.status_code == 403 and b"<Response>" in forged.data


def ET_head(root: object) -> bytes:
    import xml.etree.ElementTree as ET

    text = ET.tostring(root, encoding="unicode")  # type: ignore[arg-type]
    return ('<?xml version="1.0" encoding="UTF-8"?>' + text).encode().split(b"<Gather")[0]


def test_a_leg_of_no_known_role_is_a_400_and_changes_nothing(
    caller: Caller, service: Callflow
) -> None:
    answer = caller.post(f"{BASE_URL}/voice/leg?role=ghost&call={caller.call_sid}",
                         CallStatus="completed")  # fmt: skip
    assert answer.status_code == 400 and b"role must be one of" in answer.data
    placed = caller.post(f"{BASE_URL}/voice/leg?role=meeting", CallStatus="completed")
    assert placed.status_code == 400 and b"ref" in placed.data
    assert {"agent", "specialist", "meeting", "callback"} == LEG_ROLES
    with pytest.raises(Malformed):
        service.ends.leg_status("agent", caller.call_sid, "completed", {}, service.links(BASE_URL))


def test_call_ends_goes_on_when_one_party_fails(service: Callflow, monkeypatch: pytest.MonkeyPatch) -> None:
    """A callback's end reaches the call-back and the VSTRS call, even when the first fails."""
    heard: list[str] = []

    def failing(*_: object) -> None:
        heard.append("callback")
        raise StoreUnavailable("down")

    monkeypatch.setattr(service.callbacks, "leg_ended", failing)
    monkeypatch.setattr(service.vstrs, "caller_ended", lambda *_: heard.append("vstrs"))
    ends: CallEnds = service.ends
    ends.leg_status("callback", "CA" + "5" * 32, "completed", {}, service.links(BASE_URL),
                    ref="cb1")  # fmt: skip
    assert heard == ["callback", "vstrs"]
    heard.clear()
    ends.leg_status("callback", "CA" + "5" * 32, "ringing", {}, service.links(BASE_URL), ref="cb1")
    assert heard == []  # not final: nobody hears of an end


def test_gunicorn_workers_freeze_the_heap_they_loaded() -> None:
    """The Procfile and `callflow serve` run gunicorn with callflow.gunicorn_hooks, whose
    post_worker_init moves the loaded app out of the collector's sight."""
    import gc
    import warnings

    from callflow.gunicorn_hooks import post_worker_init

    assert "-c python:callflow.gunicorn_hooks" in (ROOT / "Procfile").read_text()
    assert "python:callflow.gunicorn_hooks" in (ROOT / "callflow" / "cli" / "serve.py").read_text()
    # Other tests' garbage (a service built on Redis and dropped unclosed) is collected
    # first, outside the hook: its ResourceWarning is theirs, not the hook's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    before = gc.get_freeze_count()
    try:
        post_worker_init(None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_the_call_handling_parts_are_built_in_dependency_order(service: Callflow) -> None:
    """Call-backs, then VSTRS calls on them, then hand-offs on those: none is filled in
    after construction, and none reaches a part built after it."""
    from dataclasses import fields

    from callflow.context import CallServices, Services

    assert {f.name for f in fields(Services)}.isdisjoint(
        {"vstrs", "handoffs", "callbacks", "meetings"}
    )
    assert {f.name for f in fields(CallServices)} >= {"vstrs", "handoffs", "callbacks", "meetings"}
    assert service.vstrs.callbacks is service.callbacks
    assert service.handoffs.vstrs is service.vstrs
    assert service.engine.services.handoffs is service.handoffs
    lower = {"callbacks.py": ("vstrs", "handoffs"), "vstrs.py": ("handoffs",)}
    for name, above in lower.items():
        source = (ROOT / "callflow" / name).read_text()
        for part in above:
            assert f"services.{part}" not in source and f"self.{part}." not in source, (name, part)
