"""Publishing flows: versions kept in the store, the live one, history, diff and rollback.

A designer publishes a flow's text with its tests. Publishing validates the flow, runs
its tests through the simulator (see callflow/flowtests.py), keeps the version's text and
tests in the store, and makes it live: every worker of every instance looks for newly
live versions every ``CALLFLOW_FLOW_RELEASE_CHECK`` seconds (2 by default) when a call
starts, so new calls get it within seconds and without a restart; calls already in
progress keep the version they started on. A flow that fails validation or a test is
never stored or made live. Rolling back makes an earlier version live again. Each publish
and rollback is audited with who did it.

A published version takes precedence over the flow file of the same name; without one,
the file in the flows folder is live (as before publishing existed).

Every act is by a signed-in person (``by``, a :class:`~callflow.access.Viewer`), whose
role is checked here, so the console and the CLI are held to the same rules: designers
and admins publish, approve, reject and roll back; admins protect and unprotect. A
protected flow's change goes live only when a second person approves it: a new version,
a rollback (with its reason), and lifting the protection itself (a second admin). A flow
is protected whatever its name when what it does calls for it: it verifies callers or
reads a secret, or puts callers through to staff (``protection_reasons``). The one way
round a second person is the named emergency rollback: back to the last version a second
person approved, with a reason, audited as such.
"""

from __future__ import annotations

import difflib
import logging
from typing import TYPE_CHECKING, Any, cast

from .access import Viewer, require
from .allowlists import AllowLists, destination_problems
from .audit import Audit
from .clock import Clock
from .errors import CallflowError, FlowTestError, FlowValidationError, PublishRefused, ReplayChanges
from .flowspec import NAME, Flow, parse_flow
from .flowtests import FileResult, load_tests, run_tests, tests_for
from .library import RELEASES
from .records import Release
from .store.base import Store

if TYPE_CHECKING:
    from .library import FlowLibrary
    from .replay import Replayer, ReplayReport
    from .sandbox import Sandbox

__all__ = ["NAMESPACE", "FlowReleases",]

log = logging.getLogger(__name__)

NAMESPACE = RELEASES
TESTS_NAMESPACE = "flow_tests"
PROTECTION = ("flow_protection", "current")
#: Flows protected from the start (and, whatever the admins say, every flow whose actions
#: verify callers, read secrets or put callers through to staff: protection_reasons).
DEFAULT_PROTECTED = ("specialist_handoff", "vstrs_callback", "vstrs_inbound")
#: Who publishes, approves, rejects and rolls back flows.
DESIGNERS = ("designer", "admin")
MAX_HISTORY = 200
MAX_PENDING = 20
#: The longest revision note kept.
MAX_NOTE = 500


class FlowReleases:
    """Published versions of flows in the store."""

    def __init__(
        self,
        store: Store,
        audit: Audit,
        clock: Clock,
        library: FlowLibrary,
        allowlists: AllowLists | None = None,
        *,
        sandbox: Sandbox | None = None,
        replayer: Replayer | None = None,
        replay_calls: int = 200,
    ) -> None:
        #: Where a version's tests run before it is published (None: nothing is published).
        self.sandbox = sandbox
        #: Replays recent real calls before a publish (None: no replay).
        self.replayer = replayer
        #: How many recent calls a publish replays (CALLFLOW_REPLAY_CALLS).
        self.replay_calls = replay_calls
        self.store = store
        self.audit = audit
        self.clock = clock
        self.library = library
        self.registry = library.registry
        self.flows_dir = library.flows_dir
        self.allowlists = allowlists or AllowLists(store, audit, clock)

    # -- protection: who must agree before a version goes live

    def protected(self) -> list[str]:
        """The flows an admin has protected (or that are protected from the start); every
        flow protected by what it does is too (:meth:`is_protected`)."""
        doc = self.store.get_doc(*PROTECTION)
        return sorted(doc["names"] if doc is not None else DEFAULT_PROTECTED)

    def protection_reasons(self, flow: Flow | None) -> list[str]:
        """Why a flow must be protected by what it does (none: only if an admin says so):
        an action that verifies callers or reads a secret, or one that puts callers through
        to staff."""
        if flow is None:
            return []
        actions = {a for s in flow.states.values() for a in s.enter}
        actions |= {a for tr in flow.transitions() for a in tr.actions}
        reasons = []
        for name in sorted(actions):
            spec = self.registry.actions.get(name)
            if spec is not None and spec.secret:
                reasons.append(f"{name} verifies callers (it reads a secret)")
            elif spec is not None and spec.connects:
                reasons.append(f"{name} puts callers through to staff")
        return reasons

    def is_protected(self, name: str, flow: Flow | None = None) -> bool:
        """Whether ``name`` needs a second person's approval: an admin protected it, or
        what it does (``flow``: the version at hand; else the live one) calls for it."""
        if name in self.protected():
            return True
        if flow is None:
            live = self.library.live_versions().get(name)
            flow = self.library.version(live) if live else None
        return bool(self.protection_reasons(flow))

    def protection(self) -> dict[str, Any]:
        """The protected flows, why each is, and lifts of protection waiting for a second
        admin."""
        doc = self.store.get_doc(*PROTECTION) or {}
        names = set(doc.get("names", DEFAULT_PROTECTED))
        by_nature = {}
        for name, version in self.library.live_versions().items():
            reasons = self.protection_reasons(self.library.version(version))
            if reasons:
                by_nature[name] = reasons
        return {
            "flows": {
                name: by_nature.get(name) or ["protected by an admin"]
                for name in sorted(names | set(by_nature))
            },
            "lifting": doc.get("lifting", {}),
        }

    def set_protected(self, name: str, protected: bool, by: Viewer) -> str:
        """Protect a flow, or lift its protection: an admin's act, audited. Lifting it is a
        two-person act: the first admin asks (``requested``), a second admin's ask lifts
        it (``unprotected``). A flow whose actions call for protection cannot be lifted.
        Returns what happened: ``protected``, ``requested``, ``unprotected``, ``unchanged``."""
        who = require(by, ("admin",), "protecting flows")
        if not NAME.match(name or ""):
            raise CallflowError("name: a flow name, lower_case")
        if not protected:
            live = self.library.live_versions().get(name)
            reasons = self.protection_reasons(self.library.version(live) if live else None)
            if reasons:
                raise CallflowError(
                    f"flow {name} stays protected by what it does: {'; '.join(reasons)}"
                )
        now = self.clock.now()
        outcome: list[str] = []

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            outcome.clear()
            doc = doc or {"names": list(DEFAULT_PROTECTED)}
            names = set(doc["names"])
            lifting = dict(doc.get("lifting", {}))
            if protected:
                lifting.pop(name, None)
                outcome.append("protected" if name not in names else "unchanged")
                return {**doc, "names": sorted(names | {name}), "lifting": lifting}
            if name not in names:
                outcome.append("unchanged")
                return None
            asked = lifting.get(name)
            if asked is None or asked["by"] == by.account:
                lifting[name] = {"by": by.account, "at": now}
                outcome.append("requested")
                return {**doc, "lifting": lifting}
            lifting.pop(name)
            outcome.append("unprotected")
            return {**doc, "names": sorted(names - {name}), "lifting": lifting}

        self.store.change_doc(*PROTECTION, change)
        result = outcome[0] if outcome else "unchanged"
        kind = {
            "protected": "flow.protected",
            "requested": "flow.unprotect_requested",
            "unprotected": "flow.unprotected",
        }.get(result)
        if kind:
            self.audit.record(kind, flow=name, by=who, outcome=result)
        return result

    def pending(self, name: str | None = None) -> list[dict[str, Any]]:
        """Versions waiting for a second designer's approval (of one flow, or all)."""
        docs = [self.release(name)] if name else self.store.list_docs(NAMESPACE)
        return [
            {**entry, "flow": doc["name"]}
            for doc in docs
            if doc is not None
            for entry in doc.get("pending", [])
        ]

    # -- reading

    def live_map(self) -> dict[str, str]:
        """The published live version of each flow that has one (one store read)."""
        return {doc["name"]: doc["live"] for doc in self.store.list_docs(NAMESPACE)}

    def release(self, name: str) -> Release | None:
        """A flow's release record: the live version and its history, newest last."""
        if not NAME.match(name or ""):
            return None
        return cast("Release | None", self.store.get_doc(NAMESPACE, name))

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every publish and rollback of a flow, newest last."""
        doc = self.release(name)
        return list(doc["history"]) if doc else []

    def file_flow(self, name: str) -> Flow | None:
        """The flow of that name in the flows folder (its last good version), if any."""
        return self.library.file_flow(name)

    def source(self, name: str, version: str) -> str:
        """The text of one version of a flow (published, or the flows folder's)."""
        stored = self.store.get_flow(version)
        if stored is not None:
            if stored[0] != name:
                raise CallflowError(f"version {version} is flow {stored[0]}, not {name}")
            return stored[1]
        file_flow = self.file_flow(name)
        if file_flow is not None and file_flow.version == version:
            return file_flow.source
        raise CallflowError(f"flow {name} has no version {version}")

    def tests_source(self, name: str, version: str) -> str | None:
        """The tests published with a version (or the flows folder's, for its version)."""
        doc = self.store.get_doc(TESTS_NAMESPACE, version)
        if doc is not None:
            return str(doc["source"])
        file_flow = self.file_flow(name)
        if file_flow is not None and file_flow.version == version:

            path = tests_for(file_flow.path)
            return path.read_text(encoding="utf-8") if path.exists() else None
        return None

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version known for a flow, newest first: published ones and the file's."""
        seen: dict[str, dict[str, Any]] = {}
        for entry in reversed(self.history(name)):
            seen.setdefault(entry["version"], entry)
        rows = [
            {
                "version": v,
                **{k: e[k] for k in ("action", "by", "at")},
                "author": e.get("author") or e["by"],
                "message": self._note(name, v) or e.get("message", ""),
            }
            for v, e in seen.items()
        ]
        file_flow = self.file_flow(name)
        if file_flow is not None and file_flow.version not in seen:
            rows.append(
                {
                    "version": file_flow.version,
                    "action": "file",
                    "by": "",
                    "at": None,
                    "author": "",
                    "message": "the flows folder's version",
                }
            )
        return rows

    def _note(self, name: str, version: str) -> str:
        """The revision note a version was first published with."""
        for entry in self.history(name):
            if entry["version"] == version and entry.get("action") in {"publish", "approve"}:
                return str(entry.get("message", ""))
        return ""

    def diff(self, name: str, old: str, new: str) -> str:
        """A unified diff between two versions of a flow, each named with its author and
        revision note."""
        before = self.source(name, old).splitlines(keepends=True)
        after = self.source(name, new).splitlines(keepends=True)
        notes = {row["version"]: row for row in self.versions(name)}

        def label(version: str) -> str:
            row = notes.get(version)
            if row is None or not row.get("message"):
                return f"{name}@{version}"
            who = f" by {row['author']}" if row.get("author") else ""
            return f"{name}@{version}{who}: {row['message']}"

        return "".join(difflib.unified_diff(before, after, label(old), label(new), n=3))

    # -- changing

    def check(
        self, source: str, tests_source: str, label: str = "<published>"
    ) -> tuple[Flow, FileResult]:
        """Validate a flow and run its tests; raise PublishRefused with the reasons."""
        try:
            flow = parse_flow(source, label, self.registry)
        except FlowValidationError as exc:
            raise PublishRefused(
                "the flow has problems, so it was not published", str(exc)
            ) from None
        self._check_destinations(flow, "published")
        if not tests_source.strip():
            raise PublishRefused(
                f"flow {flow.name} has no tests, so it was not published: write its tests "
                f"({flow.name}.test.yaml) and publish them with it"
            )
        try:
            tests = load_tests(f"{flow.name}.test.yaml", tests_source)
        except FlowTestError as exc:
            raise PublishRefused(
                "the tests have problems, so nothing was published", str(exc)
            ) from None
        if self.sandbox is None:
            raise PublishRefused(
                "the flow's tests cannot run here (no sandbox), so nothing is published"
            )
        result = run_tests(tests, flow, self.flows_dir, self.registry, sandbox=self.sandbox)
        if not result.passed:
            raise PublishRefused(
                f"flow {flow.name} failed its tests, so it was not published", result.report()
            )
        return flow, result

    def _check_destinations(self, flow: Flow, doing: str) -> None:
        """Refuse a version that sends callers, or plays them, anywhere not allow-listed."""
        problems = destination_problems(flow, self.allowlists.snapshot())
        if problems:
            raise PublishRefused(
                f"flow {flow.name} sends calls or plays media outside the allow-lists, so it "
                f"was not {doing}",
                "\n".join(str(p) for p in problems),
            )

    def replay(self, flow: Flow, calls: int | None = None) -> ReplayReport | None:
        """Replay the last real calls of ``flow``'s name against it and the live version
        (callflow.replay); None when there is nothing to replay against."""
        if self.replayer is None:
            return None
        count = self.replay_calls if calls is None else calls
        return self.replayer.replay(flow, count)

    def publish(
        self,
        source: str,
        tests_source: str,
        by: Viewer,
        label: str = "<published>",
        *,
        message: str,
        confirm: bool | str = False,
        strict: bool = False,
        replay_calls: int | None = None,
    ) -> dict[str, Any]:
        """Validate, test and replay; store; make live, or (a protected flow) wait for
        approval. ``message``: the revision note (what changed and why), kept with the
        author. When the replay finds recorded calls the version would change, it is
        refused (ReplayChanges, with the report) unless ``confirm`` is True or names this
        version; under ``strict`` it is refused whatever."""
        who = require(by, DESIGNERS, "publishing flows")
        author = by.account
        note = " ".join((message or "").split())
        if not note:
            raise PublishRefused(
                "say what changed and why: every publish carries a revision note "
                "(callflow flows publish FILE -m MESSAGE)"
            )
        if len(note) > MAX_NOTE:
            raise PublishRefused(f"the revision note is {len(note)} characters: at most {MAX_NOTE}")
        flow, result = self.check(source, tests_source, label)
        release = self.release(flow.name)
        if release is not None and release["live"] == flow.version:
            raise PublishRefused(f"version {flow.version} of {flow.name} is live already")
        report = self.replay(flow, replay_calls)
        if report is not None and report.calls:
            self.audit.record(
                "flow.replayed",
                flow=flow.name,
                version=flow.version,
                live=report.live,
                replayed=report.replayed,
                compared=report.compared,
                too_few=report.too_few,
                changed=len(report.changed),
                by=who,
                outcome="changes" if report.changed else "no_changes",
            )
        if report is not None and report.changed and strict:
            raise PublishRefused(
                f"version {flow.version} of {flow.name} would change "
                f"{len(report.changed)} recorded call(s), so it was not published (strict)",
                report.text(),
            )
        if strict and report is not None and report.too_few:
            raise PublishRefused(
                f"version {flow.version} of {flow.name}: too few recent calls were compared "
                f"for the replay to mean much ({report.compared} of {len(report.calls)}; at "
                f"least {report.min_compared} and 95% needed), so it was not published "
                "(strict)",
                report.text(),
            )
        if report is not None and report.changed and confirm not in (True, flow.version):
            raise ReplayChanges(flow.version, report)
        self.store.put_flow(flow.version, flow.name, flow.source)
        self.store.put_doc(
            TESTS_NAMESPACE, flow.version, {"flow": flow.name, "source": tests_source}
        )
        entry = {
            "version": flow.version,
            "action": "publish",
            "by": author,
            "at": self.clock.now(),
            "message": note,
            "coverage": result.coverage.summary(),
            "tests": len(result.results),
        }
        if report is not None:
            entry["replay"] = report.summary()
            entry["replay_changed"] = len(report.changed)
        if self.is_protected(flow.name, flow) or self.is_protected(flow.name):
            return self._submit(flow, entry)
        previous = self._make_live(flow.name, flow.version, entry)
        self.audit.record(
            "flow.published",
            flow=flow.name,
            version=flow.version,
            previous=previous,
            message=note,
            by=who,
            outcome="published",
        )
        log.info("flow %s version %s published by %s", flow.name, flow.version, who)
        return {**entry, "flow": flow.name, "previous": previous}

    def _submit(self, flow: Flow, entry: dict[str, Any]) -> dict[str, Any]:
        """A protected flow's new version (or a rollback of it) waits for a second
        person's approval."""
        name, version = flow.name, flow.version

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {"name": name, "live": None, "history": []}
            pending = [p for p in doc.get("pending", []) if p["version"] != version]
            return {**doc, "pending": [*pending, entry][-MAX_PENDING:]}

        self.store.update_doc(NAMESPACE, name, change)
        self.audit.record(
            "flow.submitted",
            flow=name,
            version=version,
            action=entry["action"],
            by=entry["by"],
            outcome="pending_approval",
        )
        log.info("flow %s version %s submitted for approval by %s", name, version, entry["by"])
        return {**entry, "flow": name, "previous": None, "pending": True}

    def approve(self, name: str, version: str, by: Viewer) -> dict[str, Any]:
        """A second person approves a protected flow's version (or rollback): it goes live
        (audited).

        The author cannot approve their own: approving is a signed-in account's act, and
        a different account's from the author's. The allow-lists are checked again, as
        they stand now.
        """
        who = require(by, DESIGNERS, "approving flows")
        waiting = next((p for p in self.pending(name) if p["version"] == version), None)
        if waiting is None:
            raise CallflowError(f"flow {name} has no version {version} waiting for approval")
        if waiting["by"] == by.account:
            raise CallflowError(
                f"{by.account} asked for version {version}: a second designer must approve it"
            )
        flow = parse_flow(self.source(name, version), f"<{name}@{version}>", self.registry)
        self._check_destinations(flow, "approved")
        entry = {
            **waiting,
            "action": "approve",
            "approved": waiting.get("action", "publish"),
            "by": by.account,
            "author": waiting["by"],
        }
        entry.pop("flow", None)
        entry["at"] = self.clock.now()
        previous = self._make_live(name, version, entry)
        self.audit.record(
            "flow.approved",
            flow=name,
            version=version,
            previous=previous,
            author=waiting["by"],
            approved=entry["approved"],
            by=who,
            outcome="approved",
        )
        log.info("flow %s version %s approved by %s", name, version, who)
        return {**entry, "flow": name, "previous": previous}

    def reject(self, name: str, version: str, by: Viewer) -> None:
        """Turn down (or withdraw) a version waiting for approval (audited)."""
        who = require(by, DESIGNERS, "turning down flow versions")

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None or not any(p["version"] == version for p in doc.get("pending", [])):
                return None
            return {**doc, "pending": [p for p in doc["pending"] if p["version"] != version]}

        if not self.store.change_doc(NAMESPACE, name, change).written:
            raise CallflowError(f"flow {name} has no version {version} waiting for approval")
        self.audit.record("flow.rejected", flow=name, version=version, by=who, outcome="rejected")

    def last_approved(self, name: str) -> str | None:
        """The version of ``name`` a second person last approved, other than the live one
        (the emergency rollback's one destination): an approved publish or rollback, else
        the flows folder's version (reviewed with the code it ships with)."""
        release = self.release(name)
        live = release["live"] if release else None
        for entry in reversed(release["history"] if release else []):
            if entry.get("action") == "approve" and entry["version"] != live:
                return str(entry["version"])
        file_flow = self.file_flow(name)
        if file_flow is not None and file_flow.version != live and live is not None:
            return file_flow.version
        return None

    def rollback(
        self,
        name: str,
        by: Viewer,
        version: str | None = None,
        message: str = "",
        *,
        emergency: bool = False,
    ) -> dict[str, Any]:
        """Make an earlier version live again (default: the one live before the current),
        saying why (``message``, required). A protected flow's rollback waits for a second
        person's approval, like a new version; ``emergency`` is the named way round it:
        back to the last version a second person approved, at once, audited as an
        emergency."""
        who = require(by, DESIGNERS, "rolling flows back")
        note = " ".join((message or "").split())[:MAX_NOTE]
        if not note:
            raise CallflowError(
                "say why: a rollback carries a reason (callflow flows rollback NAME -m REASON)"
            )
        release = self.release(name)
        current = release["live"] if release else None
        if current is None:
            file_flow = self.file_flow(name)
            current = file_flow.version if file_flow else None
        if emergency:
            approved = self.last_approved(name)
            if approved is None:
                raise CallflowError(
                    f"flow {name} has no version a second person approved: an emergency "
                    "rollback goes back only to one"
                )
            if version not in {None, approved}:
                raise CallflowError(
                    f"an emergency rollback of {name} goes back only to version {approved}, "
                    "the last a second person approved"
                )
            version = approved
        if version is None:
            version = self._previous(release, current, name)
        if version == current:
            raise CallflowError(f"version {version} of {name} is live already")
        source = self.source(name, version)  # raises for an unknown version
        flow = parse_flow(source, f"<{name}@{version}>", self.registry)
        protected = self.is_protected(name, flow) or self.is_protected(name)
        if protected and not self._was_live(release, version, name):
            raise CallflowError(
                f"version {version} of protected flow {name} was never live: publish it for "
                "approval instead"
            )
        self._check_destinations(flow, "rolled back to")
        self.store.put_flow(flow.version, flow.name, flow.source)
        entry = {
            "version": version,
            "action": "emergency_rollback" if emergency else "rollback",
            "by": by.account,
            "at": self.clock.now(),
            "message": note,
        }
        if protected and not emergency:
            return self._submit(flow, entry)
        previous = self._make_live(name, version, entry)
        self.audit.record(
            "flow.emergency_rollback" if emergency else "flow.rolled_back",
            flow=name,
            version=version,
            previous=previous,
            reason=note,
            by=who,
            outcome="emergency_rollback" if emergency else "rolled_back",
        )
        log.info("flow %s rolled back to %s by %s%s", name, version, who,
                 " (emergency)" if emergency else "")  # fmt: skip
        return {**entry, "flow": name, "previous": previous}

    def _was_live(self, release: Release | None, version: str, name: str) -> bool:
        """Whether a version was live once (published, approved, rolled back to, the file)."""
        history = release["history"] if release else []
        file_flow = self.file_flow(name)
        return any(e["version"] == version for e in history) or (
            file_flow is not None and file_flow.version == version
        )

    def _previous(self, release: Release | None, current: str | None, name: str) -> str:
        """The version live before ``current``: back through the history, else the file's."""
        history = release["history"] if release else []
        for entry in reversed(history):
            if entry["version"] != current:
                return str(entry["version"])
        file_flow = self.file_flow(name)
        if file_flow is not None and file_flow.version != current:
            return file_flow.version
        raise CallflowError(f"flow {name} has no earlier version to roll back to")

    def _make_live(self, name: str, version: str, entry: dict[str, Any]) -> str | None:
        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {"name": name, "live": None, "history": []}
            history = [*doc["history"], entry][-MAX_HISTORY:]
            pending = [p for p in doc.get("pending", []) if p["version"] != version]
            return {**doc, "live": version, "history": history, "pending": pending}

        changed = self.store.change_doc(NAMESPACE, name, change)
        before = changed.before or {}
        if before.get("live") is None:  # never published: the flows folder's version was live
            file_flow = self.file_flow(name)
            return file_flow.version if file_flow else None
        return str(before["live"])
