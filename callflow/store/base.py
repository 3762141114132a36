"""The store interface every implementation honours (see tests/store/test_contract.py)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..session import CallSession

#: A document's lifetime in seconds: fixed, or computed from the document being written.
Ttl = int | Callable[[dict[str, Any]], int | None] | None


def ttl_for(ttl: Ttl, doc: dict[str, Any]) -> int | None:
    """The lifetime to give ``doc``."""
    return ttl(doc) if callable(ttl) else ttl


#: How long a day's audit tally is kept after that day's last entry: counts only (no
#: person, call or number in them), kept as long as the assurance cases they summarise.
TALLY_KEEP_SECONDS = 3 * 366 * 86400
#: How long an audit facet's index outlives its last entry (the retention pass removes
#: older members as it archives their entries; this is the backstop).
FACET_KEEP_SECONDS = 3 * 366 * 86400

#: Computes an audit entry's hash from the entry (which already carries its ``seq``).
Seal = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class AuditState:
    """Where the audit log stands: sequence numbers taken, the store's epoch (made with the
    first entry: a store that lost everything has a new one, or none), and the last entry
    archived and trimmed away (its stream id and sequence number)."""

    seq: int
    epoch: str | None
    anchor_id: str | None = None
    anchor_seq: int = 0


@dataclass(frozen=True)
class Lease:
    """The outcome of trying to lease a call: whether we hold it, and the session if any."""

    held: bool
    session: CallSession | None


@dataclass(frozen=True)
class Created:
    """The outcome of creating a call's session: ``created``, ``exists`` (with it) or ``busy``."""

    outcome: str
    session: CallSession | None = None


#: A namespace's indexer: the index entries a document belongs to, as (index name, score).
Indexer = Callable[[dict[str, Any]], Iterable[tuple[str, float]]]


@dataclass(frozen=True)
class IndexSpec:
    """How a namespace's documents are indexed: ``indexer`` gives each document's entries;
    a time-scored entry older than ``keep_seconds`` before the newest written to its index
    is trimmed away with that write (so an index never outgrows its records' retention)."""

    indexer: Indexer
    keep_seconds: float | None = None


@dataclass(frozen=True)
class Changed:
    """What :meth:`Store.change_doc` did: the document its change saw and what it wrote.

    ``after`` is None when the change left the document as it was; ``before`` is then the
    document as it stood when the change last looked at it.
    """

    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def written(self) -> bool:
        """Whether this change was written."""
        return self.after is not None


@dataclass(frozen=True)
class Guard:
    """The lockout model's figures (see docs/lockout.md and callflow.config).

    Each calling number may make ``number_attempts`` verification attempts for an adviser
    in ``number_window`` seconds; then that number waits. Numbers that have not verified
    the adviser in ``known_seconds`` share a count of consecutive attempts (taken before
    each is checked, cleared by a verification, forgotten after ``failure_memory`` seconds
    without one): the ``adviser_threshold``-th locks the adviser to such numbers for
    ``lock_seconds``; after each lock they get one more attempt, which locks them again;
    the ``hard_limit``-th is their last until the adviser verifies from a known number or
    an admin unlocks. A known number is throttled like any other, and locked after
    ``hard_limit`` consecutive failures of its own.
    """

    number_attempts: int = 5
    number_window: int = 15 * 60
    adviser_threshold: int = 30
    lock_seconds: int = 30 * 60
    hard_limit: int = 100
    known_seconds: int = 30 * 24 * 3600
    failure_memory: int = 24 * 3600


@dataclass(frozen=True)
class Attempt:
    """Whether a verification attempt may be checked, and if not why.

    ``reason``: ``ok``; ``throttled`` (this number has had its attempts for now);
    ``locked`` (the adviser is locked to numbers that have not verified them lately);
    ``hard_locked`` (locked until they verify from a known number or an admin unlocks).
    ``first`` is True on the first refusal of a number's throttle in its window.
    """

    allowed: bool
    reason: str
    known: bool
    first: bool = False
    #: for a number that has not verified the adviser lately: this attempt's place in the
    #: adviser's count of consecutive such attempts (0 otherwise)
    ordinal: int = 0

    def lock_on_failure(self, guard: Guard) -> str:
        """The lock in force if this attempt fails: ``hard_locked`` (the last attempt such
        numbers get), ``locked`` (a lock of ``lock_seconds``), or ''."""
        if self.known or not self.ordinal:
            return ""
        if self.ordinal == guard.hard_limit:
            return "hard_locked"
        return "locked" if guard.adviser_threshold <= self.ordinal < guard.hard_limit else ""


@dataclass(frozen=True)
class LockStatus:
    """An adviser's lockout state, for staff: failures, locks, throttled and known numbers."""

    failures: int
    locked_seconds: float
    hard_locked: bool = False
    #: calling number -> (attempts in its window, seconds of the window left, its
    #: consecutive failures)
    numbers: dict[str, tuple[int, float, int]] = field(default_factory=dict)
    #: calling numbers that verified this adviser lately -> when
    known: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TraceStep:
    """One webhook's step of a call's trace, kept ``ttl_seconds`` from now (callflow.traces);
    at most ``max_steps`` are kept a call."""

    step: dict[str, Any]
    ttl_seconds: int
    max_steps: int = 400


class Store(abc.ABC):
    """Sessions with leases and compare-and-set, directory records, lockouts, audit, flows.

    Every method raises :class:`~callflow.errors.StoreUnavailable` when the backing
    store cannot be reached; callers fail closed.
    """

    kind: str = "abstract"

    def __init__(self) -> None:
        self.indexes: dict[str, IndexSpec] = {}

    def define_index(
        self, namespace: str, indexer: Indexer, keep_seconds: float | None = None
    ) -> None:
        """Keep ``namespace``'s documents indexed: from now on every write to one of them
        (put, add, update, change, delete) updates its index entries in the same atomic
        step (ARCHITECTURE.md rule 10). Querying: :meth:`indexed`."""
        self.indexes[namespace] = IndexSpec(indexer, keep_seconds)

    def _entries(self, namespace: str, doc: dict[str, Any] | None) -> dict[str, float]:
        spec = self.indexes.get(namespace)
        if spec is None or doc is None:
            return {}
        return {name: float(score) for name, score in spec.indexer(doc)}

    # -- call sessions

    @abc.abstractmethod
    def lease_session(self, call_sid: str, token: str, lease_ms: int) -> Lease:
        """Take (or renew) the call's lease for ``token`` and read its session.

        Returns ``Lease(False, None)`` when another token holds the lease.
        """

    @abc.abstractmethod
    def save_session(
        self,
        session: CallSession,
        expected_rev: int,
        token: str,
        ttl_seconds: int,
        trace: TraceStep | None = None,
    ) -> bool:
        """Write ``session`` if its stored revision is still ``expected_rev``; release the lease.

        On success ``session.rev`` becomes ``expected_rev + 1``, and ``trace`` (this
        webhook's step) is appended to the call's trace in the same atomic step. Returns
        False (and writes nothing) when someone else saved first.
        """

    @abc.abstractmethod
    def create_session(
        self, session: CallSession, ttl_seconds: int, trace: TraceStep | None = None
    ) -> Created:
        """Store a new call's first session in one step, unless the call is known already.

        ``exists`` (with the stored session) when it is; ``busy`` when another webhook
        holds the call's lease (the caller then takes the leased path); else ``created``,
        with ``session.rev`` set and ``trace`` begun.
        """

    @abc.abstractmethod
    def trace_steps(self, call_sid: str) -> list[dict[str, Any]]:
        """A call's trace: its steps in order (empty when none is kept)."""

    @abc.abstractmethod
    def release_session(self, call_sid: str, token: str) -> None:
        """Give up the call's lease without writing (only if ``token`` holds it)."""

    @abc.abstractmethod
    def get_session(self, call_sid: str) -> CallSession | None:
        """Read a session without leasing it."""

    # -- directory

    @abc.abstractmethod
    def get_adviser(self, number: str) -> dict[str, Any] | None:
        """The adviser record, or None."""

    @abc.abstractmethod
    def add_adviser(self, number: str, record: dict[str, Any]) -> bool:
        """Create an adviser record; False if the number is taken."""

    @abc.abstractmethod
    def put_adviser(self, number: str, record: dict[str, Any]) -> None:
        """Create or replace an adviser record."""

    @abc.abstractmethod
    def delete_adviser(self, number: str) -> bool:
        """Delete an adviser record (and its lockout state); False if there was none."""

    @abc.abstractmethod
    def list_advisers(self, offset: int = 0, count: int | None = None) -> list[dict[str, Any]]:
        """Adviser records in the order of their numbers (as text), a page at a time: the
        numbers are sorted in the store; only the page's records are read."""

    @abc.abstractmethod
    def count_advisers(self) -> int:
        """How many advisers there are: O(1), never a read of their records."""

    # -- lockout: verification attempts per adviser and calling number, counted atomically

    @abc.abstractmethod
    def begin_attempt(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> Attempt:
        """Count a verification attempt of ``number`` from ``caller`` before it is checked.

        Counting first means concurrent attempts can never get more checks than allowed.
        An attempt that is neither failed nor succeeded (the caller hung up) stays counted
        until its number's window ends, and no longer.

        ``relay``: the caller ID is the relay platform's (Relay UK), shared by every relay
        user, so it is not one caller: no window of its own, never known; the attempt
        counts with the unknown numbers' (docs/lockout.md, the relay row).
        """

    @abc.abstractmethod
    def attempt_failed(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> bool:
        """A counted attempt failed: the number's consecutive failures go up. True when a
        number reaches the hard limit of its own (a known number locked). A relay
        attempt has no number of its own: nothing more to count (False)."""

    @abc.abstractmethod
    def attempt_succeeded(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> None:
        """The caller verified: failures and locks cleared, ``caller`` known for a while
        (never a relay platform's number: anyone may call through it)."""

    @abc.abstractmethod
    def lock_status(self, number: str, now: float) -> LockStatus:
        """The adviser's failures, locks, throttled numbers and known numbers."""

    def lock_statuses(self, numbers: Sequence[str], now: float) -> list[LockStatus]:
        """:meth:`lock_status` of several advisers, in order: one round trip where the
        store allows (a page of the directory)."""
        return [self.lock_status(number, now) for number in numbers]

    @abc.abstractmethod
    def unlock(self, number: str) -> None:
        """Clear an adviser's failures, locks and number throttles (known numbers stay)."""

    # -- audit

    @abc.abstractmethod
    def append_audit(
        self,
        entry: dict[str, Any],
        seal: Seal | None = None,
        seq: int | None = None,
        tally: Sequence[str] = (),
        facets: Sequence[str] = (),
    ) -> str:
        """Append an audit entry; returns its id.

        ``facets``: the indexes the entry is found by (``kind:…``, ``org:…``, ``adviser:…``,
        ``call:…``; callflow.audit.facets_of), written in the same atomic step and kept
        ``FACET_KEEP_SECONDS`` after their last entry; :meth:`audit_page` reads them.

        ``tally``: fields of the entry's UTC day tally (callflow.tallies) to add one to, in
        the same atomic step as the entry (kept ``TALLY_KEEP_SECONDS`` after the day's last
        entry); :meth:`audit_tallies` reads them.

        With ``seal``, the entry takes the next sequence number in one atomic step (the
        first entry also makes the store's epoch), gets ``seq`` and ``hash`` =
        ``seal(entry with seq)``, and is written: two round trips at most, and no retries,
        however many write at once. ``seq`` given: write under that number (a void for a
        number whose entry could not be written). Raises AuditWriteFailed (with the number)
        when the number was taken but the entry not written.
        """

    @abc.abstractmethod
    def audit_tallies(self, days: Sequence[str]) -> dict[str, dict[str, int]]:
        """The tallies of the UTC days given (``YYYY-MM-DD``): day -> field -> count, days
        with none left out (one round trip where the store allows)."""

    @abc.abstractmethod
    def replace_tallies(self, tallies: dict[str, dict[str, int]]) -> None:
        """Set whole days' tallies (``callflow audit retally``, rebuilding from the log)."""

    @abc.abstractmethod
    def audit_state(self) -> AuditState:
        """Sequence numbers taken, the epoch, and the archive anchor."""

    @abc.abstractmethod
    def trim_audit(self, through_id: str, through_seq: int) -> int:
        """Remove entries up to and including ``through_id`` (archived first), remembering
        the last one's sequence number as the anchor; returns how many."""

    @abc.abstractmethod
    def audit_between(
        self, since: float, until: float, after_id: str | None = None, count: int = 1000
    ) -> list[dict[str, Any]]:
        """Audit entries written between two times (seconds since 1970), oldest first, a
        page at a time (``after_id``: the last id of the page before): O(the period)."""

    @abc.abstractmethod
    def audit_page(
        self,
        facet: str | None,
        since: float,
        until: float,
        *,
        before: str | None = None,
        after: str | None = None,
        count: int = 50,
    ) -> list[dict[str, Any]]:
        """A page of the period's audit entries, newest first: all of them, or one facet's
        (from its index, never a scan). ``before``: only entries older than that id (the
        next page); ``after``: only newer ones, the ``count`` just after it (the page
        before). O(log N + count)."""

    @abc.abstractmethod
    def audit_facet_values(self, name: str) -> list[str]:
        """The values a facet has been given (``kind`` -> every kind written), sorted: what
        the auditor's log offers to filter by. Calls' facets are not listed."""

    @abc.abstractmethod
    def audit_facet_size(self, facet: str, since: float, until: float) -> int:
        """How many of a facet's entries fall in the period (from its index)."""

    @abc.abstractmethod
    def index_audit(self, indexed: Iterable[tuple[dict[str, Any], Sequence[str]]]) -> int:
        """Add existing entries (each with its ``id``) to their facets' indexes: for entries
        written before the indexes were kept (``callflow audit reindex``). Returns how
        many entries were indexed."""

    @abc.abstractmethod
    def read_audit(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries, oldest first, each with its ``id``."""

    @abc.abstractmethod
    def audit_after(
        self, after_id: str, block_ms: int = 0, count: int = 100
    ) -> list[dict[str, Any]]:
        """Audit entries newer than ``after_id`` ("0" for all, "$" for none yet), waiting up to
        ``block_ms`` for one to arrive. Live consoles follow the log with this."""

    @abc.abstractmethod
    def last_audit_id(self) -> str:
        """The id of the newest audit entry ("0" when there is none)."""

    # -- flows

    @abc.abstractmethod
    def put_flow(self, version: str, name: str, source: str) -> None:
        """Keep a flow version's text, so any worker can serve calls pinned to it."""

    @abc.abstractmethod
    def get_flow(self, version: str) -> tuple[str, str] | None:
        """A flow version's (name, text), or None."""

    # -- documents: small JSON records by namespace (staff, teams, tokens, hand-offs, grants)

    @abc.abstractmethod
    def get_doc(self, namespace: str, key: str) -> dict[str, Any] | None:
        """A document, or None."""

    def get_docs(self, namespace: str, keys: Iterable[str]) -> list[dict[str, Any] | None]:
        """Several documents at once (one round trip where the store allows)."""
        return [self.get_doc(namespace, key) for key in keys]

    @abc.abstractmethod
    def put_doc(
        self, namespace: str, key: str, doc: Mapping[str, Any], ttl_seconds: int | None = None
    ) -> None:
        """Create or replace a document (expiring after ``ttl_seconds`` if given)."""

    @abc.abstractmethod
    def add_doc(
        self, namespace: str, key: str, doc: Mapping[str, Any], ttl_seconds: int | None = None
    ) -> bool:
        """Create a document only if there is none under that key."""

    @abc.abstractmethod
    def delete_doc(self, namespace: str, key: str) -> bool:
        """Delete a document; False when there was none."""

    @abc.abstractmethod
    def list_docs(self, namespace: str) -> list[dict[str, Any]]:
        """Every live document in a namespace."""

    @abc.abstractmethod
    def count_docs(self, namespace: str) -> int:
        """How many documents a namespace without indexes holds: O(1), never a read of
        them (a document that has expired is counted until a listing meets it)."""

    @abc.abstractmethod
    def update_doc(
        self,
        namespace: str,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        ttl_seconds: Ttl = None,
    ) -> dict[str, Any] | None:
        """Atomically read, change and write a document; ``change`` may run more than once.

        ``ttl_seconds`` may be a function of the new document (a meeting kept longer while
        it is open than once it is settled).

        ``change`` gets the current document (or None) and returns the new one, or None to
        leave it as it is. Returns what is stored afterwards.
        """

    def change_doc(
        self,
        namespace: str,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        ttl_seconds: Ttl = None,
    ) -> Changed:
        """:meth:`update_doc`, telling what the change that was written saw and wrote.

        ``update_doc`` may run ``change`` more than once (a conflicting write in between):
        anything a caller notes from inside ``change`` would then describe a run that was
        thrown away. This reports only the last run, the one whose outcome stands.
        """
        last: list[Changed] = []

        def run(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            before = None if doc is None else dict(doc)
            new = change(doc)
            last[:] = [Changed(before, new)]
            return new

        self.update_doc(namespace, key, run, ttl_seconds)
        return last[0] if last else Changed(None, None)

    @abc.abstractmethod
    def indexed(
        self,
        namespace: str,
        index: str,
        *,
        newest_first: bool = False,
        min_score: float | None = None,
        max_score: float | None = None,
        offset: int = 0,
        count: int | None = None,
    ) -> list[dict[str, Any]]:
        """The documents in one index of a namespace, by score (oldest first unless
        ``newest_first``), within the scores given, paged by ``offset`` and ``count``.
        O(what it returns): an entry whose document has expired is dropped as it is met."""

    @abc.abstractmethod
    def index_size(
        self,
        namespace: str,
        index: str,
        *,
        min_score: float | None = None,
        max_score: float | None = None,
    ) -> int:
        """How many entries an index holds, within the scores given: O(log n), never a
        read of the documents (entries of expired documents are counted until they are met
        or trimmed, so a count at the very edge of retention can run a little over)."""

    def index_sizes(
        self,
        indexes: Iterable[tuple[str, str]],
        *,
        min_score: float | None = None,
        max_score: float | None = None,
    ) -> list[int]:
        """Several indexes' sizes (``(namespace, index)`` pairs) within the same scores: one
        round trip where the store allows."""
        return [
            self.index_size(ns, i, min_score=min_score, max_score=max_score) for ns, i in indexes
        ]

    @abc.abstractmethod
    def reindex(self, namespace: str) -> int:
        """Rebuild a namespace's index entries from its documents: after an upgrade that
        added or changed an index (``callflow store reindex``). Reads every document, so it
        is an operator's command, never a request's; returns how many it indexed. Entries
        of documents that are gone are removed; legacy key sets are dropped."""

    # -- claims: short exclusive holds (an agent being rung for one call only)

    @abc.abstractmethod
    def claim(self, key: str, owner: str, ttl_seconds: int) -> bool:
        """Take ``key`` for ``owner`` unless someone else holds it."""

    @abc.abstractmethod
    def release(self, key: str, owner: str) -> None:
        """Give ``key`` up, if ``owner`` holds it."""

    @abc.abstractmethod
    def claimed_by(self, key: str) -> str | None:
        """Who holds ``key``, if anyone."""

    def claimed(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are held (one round trip where the store allows)."""
        return {key for key in keys if self.claimed_by(key)}

    # -- throttles: attempts counted in a window, atomically, before they are checked

    @abc.abstractmethod
    def take(self, key: str, limit: int, window_seconds: int, now: float) -> int:
        """Count one attempt under ``key`` at ``now`` (the window starts at the first attempt
        after the last window ended, on the service's clock); returns the count.

        The count stops at ``limit + 1``: a result up to ``limit`` means go ahead; exactly
        ``limit + 1`` is the first attempt refused (the moment to audit a throttle); more
        than that is never returned. Counting before checking means concurrent attempts
        can never get more than ``limit`` checks.
        """

    @abc.abstractmethod
    def give_back(self, key: str) -> None:
        """Uncount one attempt (it turned out not to be a failure)."""

    @abc.abstractmethod
    def forget(self, key: str) -> None:
        """Clear a throttle's count."""

    # -- counters

    @abc.abstractmethod
    def count(self, name: str, field: str, by: int = 1) -> int:
        """Add to a named counter's field; returns the new value."""

    @abc.abstractmethod
    def counters(self, name: str) -> dict[str, int]:
        """Every field of a named counter."""

    # -- health

    @abc.abstractmethod
    def ping(self) -> bool:
        """Whether the store answers."""

    @abc.abstractmethod
    def on_recover(self, callback: Callable[[], None]) -> None:
        """Have ``callback`` run when the store answers again after failing to."""
