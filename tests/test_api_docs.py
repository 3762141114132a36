"""docs/api.md is true to the code: every example on it is sent to the service, in order,
through one hand-off, and every documented answer's status and shape (the same keys
at every level, the same kinds of value) must match what the service answers. Errors,
states, roles and "authorised" must match word for word."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.errors import StoreUnavailable
from callflow.store import Store
from tests.conftest import ROOT
from tests.rigs import KIM, Rig

DOC = ROOT / "docs" / "api.md"
BLOCK = re.compile(r"^```(\w+) ([^\n]*)\n(.*?)^```", re.S | re.M)
TOKENS = {
    "<agent token>": "agent",
    "<other agent's token>": "other_agent",
    "<specialist token>": "specialist",
    "<colleague's token>": "colleague",
    "<other team's token>": "other_team",
    "<admin token>": "admin",
    "<supervisor token>": "supervisor",
}
#: Values that must read exactly as documented (the rest: the same kind of value).
EXACT = {"error", "status", "authorised", "state", "role", "reason_code"}


def examples() -> list[dict[str, Any]]:
    """The page's examples, in order: request line, token, body, documented answer."""
    found: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for lang, info, body in BLOCK.findall(DOC.read_text()):
        attrs = dict(part.split("=", 1) for part in info.split())
        if lang == "http":
            name = attrs["example"]
            lines = body.strip().splitlines()
            method, path = lines[0].split(" ", 1)
            auth = next(line for line in lines[1:] if line.startswith("Authorization:"))
            found[name] = {"name": name, "method": method, "path": path,
                           "who": TOKENS[auth.split("Bearer ", 1)[1].strip()]}  # fmt: skip
            order.append(name)
        elif lang == "json" and "request" in attrs:
            found[attrs["request"]]["body"] = json.loads(body)
        elif lang == "json" and "answer" in attrs:
            found[attrs["answer"]]["status"] = int(attrs["status"])
            found[attrs["answer"]]["answer"] = json.loads(body)
    for name in order:
        assert "answer" in found[name], f"example {name} has no documented answer"
    return [found[name] for name in order]


def same_shape(documented: Any, actual: Any, where: str = "", exact: bool = True) -> None:
    """Same keys at every level and the same kinds of value; outside lists (whose items
    vary), the EXACT keys read word for word."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where}: documented an object, got {actual!r}"
        assert sorted(documented) == sorted(actual), f"{where}: documented keys differ"
        for key, value in documented.items():
            if exact and key in EXACT:
                assert actual[key] == value, f"{where}.{key}: {actual[key]!r} != {value!r}"
            same_shape(value, actual[key], f"{where}.{key}", exact)
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{where}: documented a list, got {actual!r}"
        assert bool(documented) == bool(actual), f"{where}: documented {len(documented)} items"
        if documented:
            for item in actual:
                same_shape(documented[0], item, f"{where}[]", exact=False)
    elif documented is None:
        assert actual is None, f"{where}: documented null, got {actual!r}"
    elif isinstance(documented, bool):
        assert isinstance(actual, bool), f"{where}: documented true/false, got {actual!r}"
    elif isinstance(documented, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), where
    else:
        assert isinstance(actual, str), f"{where}: documented text, got {actual!r}"


class Story:
    """One hand-off, moved on between the examples that need it."""

    def __init__(self, store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rig = Rig(store, clock)
        self.tokens = self.rig.tokens_for_everyone()
        self.monkeypatch = monkeypatch
        self.values: dict[str, str] = {}
        self.before: dict[str, Callable[[], None]] = {
            "call": self.caller_with_agent,
            # Kim said she is available: the hand-off rings her own phone, and she answers.
            "handoff": lambda: self.rig.own_phone(KIM),
            "card": self.briefing,
            "grant_ended": self.caller_hangs_up,
            "grant_store_down": self.store_down,
            "stats": self.monkeypatch.undo,
        }

    def caller_with_agent(self) -> None:
        self.caller = self.rig.caller_with_agent()
        self.values["call"] = self.caller.sid

    def briefing(self) -> None:
        handoff = self.values["handoff"]
        assert self.rig.sim.run_until(lambda: self.rig.handoff(handoff)["state"] == "briefing")

    def caller_hangs_up(self) -> None:
        self.rig.sim.hang_up(self.caller)
        self.rig.sim.advance(10)  # within the specialist's wrap-up

    def store_down(self) -> None:
        def down(*args: object, **kwargs: object) -> None:
            raise StoreUnavailable("Redis unreachable")

        self.monkeypatch.setattr(self.rig.svc.store, "get_doc", down)

    def send(self, example: dict[str, Any]) -> Any:
        if example["name"] in self.before:
            self.before[example["name"]]()
        path = example["path"].format(**self.values)
        headers = {"Authorization": f"Bearer {self.tokens[example['who']]}"}
        kwargs = {"json": example["body"]} if "body" in example else {}
        return self.rig.api.open(path, method=example["method"], headers=headers, **kwargs)


def test_every_documented_example_answers_as_documented(
    store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = Story(store, clock, monkeypatch)
    seen = examples()
    assert len(seen) >= 15
    for example in seen:
        answer = story.send(example)
        body = answer.get_json()
        assert answer.status_code == example["status"], (example["name"], body)
        same_shape(example["answer"], body, example["name"])
        if example["name"] == "handoff":
            story.values["handoff"] = body["id"]


def test_the_who_sees_what_table_names_every_endpoint() -> None:
    from webhooks import create_app

    text = DOC.read_text()
    after = text.split("## Who sees what", 1)[1]
    table = next(block for block in after.split("\n\n") if block.startswith("| endpoint"))
    app = create_app({"CALLFLOW_SETTINGS": {"secret_key": "k" * 32}})
    routes = {
        rule.rule.replace("<call_sid>", "<CallSid>").replace("<handoff_id>", "<id>")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
    }
    for route in routes:
        short = route.rsplit("/handoffs/<id>", 1)[0] if route.endswith("/complete") else route
        assert short in table or route in table, f"{route} is missing from the table"
