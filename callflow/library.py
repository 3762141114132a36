"""The flows a process serves: the live version of each flow and every version still in use.

Flow files are read at start-up and re-read when they change (checked at most once a
second, only when a new call starts). A file that stops validating is reported and the
last good version stays live. A version published to the store (callflow/releases.py)
takes precedence over the file of the same name: the store's live versions are read at
most every ``flow_release_check_seconds`` (one round trip), again only when a new call
starts, so a publish or rollback reaches every worker within seconds, without a restart.
Each version's text is kept in the store, so a call pinned to a version this process has
never loaded (another worker, an older file) still runs. Machines are built once per
version and cached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .allowlists import Allowed, destination_problems
from .clock import Clock
from .errors import FlowValidationError, Problem, StoreError, UnknownFlowError
from .flowspec import Flow, flow_files, load_flow, parse_flow
from .machine import FlowMachine
from .registry import Registry
from .store.base import Store

#: Where each published flow's release record lives (its live version and history): the
#: library reads it; callflow.releases writes it.
RELEASES = "flow_releases"

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class _FileStamp:
    mtime_ns: int
    size: int


class FlowLibrary:
    """Flows by name (live version) and by version (any version still in use)."""

    def __init__(
        self,
        flows_dir: Path,
        store: Store,
        registry: Registry,
        clock: Clock,
        release_check_seconds: float = 2.0,
        allowed: Callable[[], Allowed] | None = None,
    ) -> None:
        self.flows_dir = Path(flows_dir)
        self.release_check_seconds = release_check_seconds
        self.store = store
        self.registry = registry
        self.clock = clock
        #: The allow-lists as they stand (read only when a version is about to go live).
        self.allowed = allowed or Allowed
        self._lock = threading.RLock()
        self._versions: dict[str, Flow] = {}
        self._machines: dict[str, FlowMachine] = {}
        self._live: dict[str, str] = {}  # from the flow files
        self._released: dict[str, str] = {}  # published to the store: these win
        self._releases_at = float("-inf")
        self._stamps: dict[Path, _FileStamp] = {}
        self._stored: set[str] = set()
        self._checked_at = float("-inf")
        self.problems: dict[str, list[Problem]] = {}
        self.refresh(force=True)
        self.check_releases(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read flow files that changed since the last look."""
        now = self.clock.now()
        if not force and now - self._checked_at < RECHECK_SECONDS:
            return
        with self._lock:
            self._checked_at = now
            for path in flow_files(self.flows_dir) if self.flows_dir.is_dir() else []:
                try:
                    stat = path.stat()
                except OSError:
                    continue
                stamp = _FileStamp(stat.st_mtime_ns, stat.st_size)
                if self._stamps.get(path) == stamp:
                    continue
                self._stamps[path] = stamp
                self._load_file(path)

    def _outside_allowlists(self, flow: Flow) -> list[Problem]:
        """A version's destinations and media not on the allow-lists (rule 11).

        A flow that sends calls nowhere the designer chose needs no look at the lists.
        Raises StoreError when the lists are needed and cannot be read.
        """
        problems = destination_problems(flow, Allowed())
        if not problems:
            return []
        return destination_problems(flow, self.allowed())

    def _load_file(self, path: Path) -> None:
        try:
            flow = load_flow(path, self.registry)
            outside = self._outside_allowlists(flow)
        except FlowValidationError as exc:
            self.problems[str(path)] = exc.problems
            for problem in exc.problems:
                log.error("flow problem %s", problem)
            return
        except StoreError as exc:
            # The lists cannot be read: not live yet, and looked at again next time.
            log.error("flow %s not loaded: the allow-lists cannot be read (%s)", path, exc)
            self._stamps.pop(path, None)
            return
        if outside:
            self.problems[str(path)] = outside
            for problem in outside:
                log.error("flow problem %s", problem)
            return
        self.problems.pop(str(path), None)
        self._versions[flow.version] = flow
        previous = self._live.get(flow.name)
        self._live[flow.name] = flow.version
        if previous != flow.version:
            log.info("flow %s version %s is live (%s)", flow.name, flow.version, path)

    def check_releases(self, *, force: bool = False) -> None:
        """Pick up versions published (or rolled back) in the store since the last look."""
        now = self.clock.now()
        if not force and now - self._releases_at < self.release_check_seconds:
            return
        self._releases_at = now
        try:
            docs = self.store.list_docs(RELEASES)
        except StoreError as exc:
            log.warning("flow releases not checked (%s); serving the versions known", exc)
            return
        released = {doc["name"]: doc["live"] for doc in docs if doc.get("live")}
        for name, version in released.items():
            if self._released.get(name) == version:
                continue
            label = f"<published {name}@{version}>"
            try:
                outside = self._outside_allowlists(self.version(version))
            except (UnknownFlowError, FlowValidationError, StoreError) as exc:
                log.error("flow %s version %s cannot be served: %s", name, version, exc)
                continue
            if outside:
                # Published before an allow-list entry was removed, or written to the store
                # by hand: it never goes live; the version before it stays.
                self.problems[label] = outside
                log.error("flow %s version %s is outside the allow-lists", name, version)
                continue
            stale = [k for k in self.problems if k.startswith(f"<published {name}@")]
            for key in stale:
                self.problems.pop(key, None)
            with self._lock:
                self._released[name] = version
            log.info("flow %s version %s is live (published)", name, version)
        for name in set(self._released) - set(released):
            with self._lock:
                self._released.pop(name, None)

    def file_flow(self, name: str) -> Flow | None:
        """The flows folder's (last good) version of a flow, if the folder has one."""
        self.refresh()
        version = self._live.get(name)
        return self._versions.get(version) if version else None

    def _live_version(self, name: str) -> str | None:
        return self._released.get(name) or self._live.get(name)

    def names(self) -> list[str]:
        """The names of the flows with a live version."""
        return sorted(set(self._live) | set(self._released))

    def live_versions(self) -> dict[str, str]:
        """The live version of each flow, by name (published versions looked for first)."""
        self.check_releases()
        versions = {name: self._live_version(name) for name in self.names()}
        return {name: v for name, v in versions.items() if v}

    def live(self, name: str) -> Flow:
        """The version new calls to ``name`` start on."""
        self.refresh()
        self.check_releases()
        version = self._live_version(name)
        if version is None:
            raise UnknownFlowError(f"no valid flow named {name!r} in {self.flows_dir}")
        flow = self._versions[version]
        if version not in self._stored:
            self.store.put_flow(version, flow.name, flow.source)
            self._stored.add(version)
        return flow

    def version(self, version: str) -> Flow:
        """A flow by version, from this process or from the store."""
        flow = self._versions.get(version)
        if flow is not None:
            return flow
        stored = self.store.get_flow(version)
        if stored is None:
            raise UnknownFlowError(f"flow version {version} is not known")
        name, source = stored
        flow = parse_flow(source, f"<{name}@{version}>", self.registry)
        with self._lock:
            self._versions[version] = flow
        return flow

    def machine(self, flow: Flow) -> FlowMachine:
        """The machine for a flow version, built once."""
        machine = self._machines.get(flow.version)
        if machine is None:
            with self._lock:
                machine = self._machines.get(flow.version)
                if machine is None:
                    machine = FlowMachine(flow, self.registry)
                    self._machines[flow.version] = machine
        return machine
