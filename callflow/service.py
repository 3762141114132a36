"""The service facade: builds the store, directory, audit, flow library and engine once.

The webhooks and the CLI both start here, so they share one wiring.
"""

from __future__ import annotations

import logging
import time
from random import Random, SystemRandom
from typing import Any

from .accounts import Accounts
from .actions import builtin_registry
from .allowlists import Allowed, AllowLists
from .assurance import Assurance
from .audit import Audit, Checkpoints, chain_key, checkpoint_problem
from .call_ends import CallEnds
from .callbacks import Callbacks
from .clock import Clock, SystemClock
from .config import Settings
from .context import CallServices, Services
from .directory import Directory
from .dispatcher import CallbackDispatcher
from .engine import CallEngine
from .errors import ConfigError
from .handoff import HandOffs
from .library import FlowLibrary
from .links import ServiceLinks
from .meetings import Meetings
from .registry import Registry
from .releases import FlowReleases
from .replay import Replayer
from .retention import Retention
from .sandbox import AppFactory, Sandbox
from .secrets import Hasher
from .staff import Staff
from .store import Store, open_store
from .traces import Traces
from .twilio_adapter import TwilioAdapter
from .vstrs import VstrsCalls

log = logging.getLogger(__name__)

#: Seconds one REST request to Twilio may take.
TWILIO_TIMEOUT = 8.0


class Callflow:
    """One process's callflow: settings, store, directory, audit, flows, engine."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        registry: Registry | None = None,
        rng: Random | None = None,
        twilio_client: Any = None,
        sandbox: bool = False,
        app_factory: AppFactory | None = None,
    ) -> None:
        """``sandbox``: a service of its own for flow tests and the softphone, whose calls
        never leave the simulator (allow-lists do not apply inside it). ``app_factory``:
        the web app factory sandboxed worlds wrap their service in (None: the package's
        ``callflow.web`` entry point, looked up when first needed)."""
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = store or open_store(
            settings.redis_url,
            socket_timeout=settings.redis_socket_timeout,
            breaker_threshold=settings.redis_breaker_threshold,
            breaker_cooldown=settings.redis_breaker_cooldown,
        )
        self.registry = registry or builtin_registry()
        self.hasher = Hasher(settings.secret_key, settings.hash_cost)
        self.audit = Audit(self.store, self.clock, chain_key(settings.secret_key))
        self.checkpoints = Checkpoints(
            settings.audit_checkpoints_dir, settings.secret_key, self.clock
        )
        self.directory = Directory(self.store, self.hasher, self.audit)
        self.staff = Staff(self.store, settings.secret_key, self.audit)
        self.accounts = Accounts(
            self.store, self.hasher, self.staff, settings.secret_key, self.audit
        )
        self.staff.account_role = self.accounts.role_of
        self._twilio_client = twilio_client
        self._twilio: TwilioAdapter | None = None
        self.services = Services(
            settings=settings,
            store=self.store,
            directory=self.directory,
            hasher=self.hasher,
            audit=self.audit,
            clock=self.clock,
            rng=rng or SystemRandom(),
            staff=self.staff,
            twilio=self.twilio,
        )
        # The call-handling parts, each built on those it needs, in dependency order.
        self.callbacks = Callbacks(self.services)
        self.vstrs = VstrsCalls(self.services, self.callbacks)
        self.handoffs = HandOffs(self.services, self.vstrs)
        self.store.on_recover(self.handoffs.mark_doubt)
        self.dispatcher = CallbackDispatcher(self.vstrs, self.callbacks)
        self.assurance = Assurance(self.services)
        self.allowlists = AllowLists(self.store, self.audit, self.clock)
        self.library = FlowLibrary(
            settings.flows_dir,
            self.store,
            self.registry,
            self.clock,
            release_check_seconds=settings.flow_release_check_seconds,
            allowed=Allowed.in_sandbox if sandbox else self.allowlists.snapshot,
        )
        self.meetings = Meetings(self.services, self.library)
        self.traces = Traces(
            self.store, self.audit, settings.trace_retention_days * 86400, self.library
        )
        # Flow tests, replays and the softphone run in worlds of their own: a service like
        # this one (this class), and the web app around it (handed in, or the package's).
        self.sandbox = Sandbox(type(self), app_factory)
        # The publish gate: a version's tests run in the sandbox, and (here, not in a
        # sandbox, which has no real calls of its own) recent real calls are replayed.
        self.releases = FlowReleases(
            self.store,
            self.audit,
            self.clock,
            self.library,
            self.allowlists,
            sandbox=self.sandbox,
            replayer=None if sandbox else Replayer(self, settings.flows_dir, self.registry),
            replay_calls=settings.replay_calls,
        )
        self.engine = CallEngine(
            CallServices(
                **vars(self.services),
                callbacks=self.callbacks,
                vstrs=self.vstrs,
                handoffs=self.handoffs,
                meetings=self.meetings,
            ),
            self.library,
        )
        #: What a call's or a leg's end means (the voice edge calls this, and nothing else).
        self.ends = CallEnds(self.engine, self.vstrs, self.handoffs, self.meetings, self.callbacks)

        self.retention = Retention(self)

    def twilio(self) -> TwilioAdapter:
        """The adapter for Twilio's REST API (the simulator's, when one was handed in)."""
        if self._twilio is None:
            client = self._twilio_client
            if client is None:
                if not (self.settings.twilio_account_sid and self.settings.twilio_auth_token):
                    raise ConfigError(
                        "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed to call Twilio"
                    )
                from twilio.http.http_client import TwilioHttpClient
                from twilio.rest import Client

                # A REST request never hangs on: well inside the stale-claim time of a ring
                # (callflow.vstrs) and Twilio's 15 s for the webhook that made it.
                client = Client(
                    self.settings.twilio_account_sid,
                    self.settings.twilio_auth_token,
                    http_client=TwilioHttpClient(timeout=TWILIO_TIMEOUT),
                )
                if self.settings.twilio_api_base_url:
                    # The local simulator's REST server stands in for api.twilio.com.
                    client.api.base_url = self.settings.twilio_api_base_url
            self._twilio = TwilioAdapter(client)
        return self._twilio

    def links(self, reached_at: str | None = None) -> ServiceLinks:
        """The service's links (see :meth:`ServiceLinks.at`): on PUBLIC_BASE_URL, else on
        the address a request reached, else on ``reached_at``."""
        return ServiceLinks.at(self.settings.public_base_url, reached_at)

    @classmethod
    def from_env(cls) -> Callflow:
        """Built from environment variables (see callflow.config)."""
        return cls(Settings.from_env())

    def audit_health(self) -> dict[str, Any]:
        """Whether the audit log is whole as far as the store's state shows: not behind its
        newest checkpoint, and the store the one it saw (not one that came back empty)."""

        checkpoint = self.checkpoints.newest()
        if checkpoint is None:
            why = "no checkpoints folder" if self.checkpoints.folder is None else "none yet"
            return {"checked": False, "ok": True, "why": why}
        state = self.store.audit_state()
        problem = checkpoint_problem(checkpoint, state.epoch, state.anchor_seq, None)
        taken = int(checkpoint.get("taken", checkpoint.get("seq", 0)))
        if not problem and state.seq < taken:
            problem = (
                f"the log has taken {state.seq} numbers but the checkpoint of "
                f"{checkpoint['at']} saw {taken}: entries were lost or cut off"
            )
        return {
            "checked": True,
            "ok": not problem,
            "why": problem or f"consistent with the checkpoint of {checkpoint['at']}",
        }

    def adviser_lockout(self, number: str) -> dict[str, Any]:
        """An adviser's lockout state for staff: figures, and each throttle or lock and why."""
        self.directory.require(number)
        now = self.clock.now()
        guard = self.settings.guard
        status = self.store.lock_status(number, now)
        why: list[str] = [f"adviser {number}"]
        if status.hard_locked:
            why.append(
                f"LOCKED to numbers that have not verified them: {status.failures} consecutive "
                f"failures reached the limit of {guard.hard_limit}; it lasts until they verify "
                "from a known number or `callflow advisers unlock`"
            )
        elif status.locked_seconds:
            why.append(
                f"LOCKED to numbers that have not verified them for another "
                f"{status.locked_seconds / 60:.0f} min: {status.failures} consecutive failures "
                f"(the lock starts at {guard.adviser_threshold})"
            )
        else:
            why.append(
                f"not locked: {status.failures} consecutive failures (a lock starts at "
                f"{guard.adviser_threshold})"
            )
        for caller, (attempts, left, consecutive) in sorted(status.numbers.items()):
            waiting = attempts >= guard.number_attempts and left > 0
            state = (
                f"WAITING {left / 60:.0f} min ({attempts} attempts in its window of "
                f"{guard.number_window // 60} min)"
                if waiting
                else f"{attempts} attempt(s) in its window"
            )
            if consecutive >= guard.hard_limit:
                state = f"LOCKED: {consecutive} consecutive failures from this number"
            why.append(f"  number {caller}: {state}, {consecutive} consecutive failure(s)")
        for caller, at in sorted(status.known.items()):
            day = time.strftime("%Y-%m-%d", time.gmtime(at))
            why.append(f"  known number {caller}: verified them on {day}; never locked out")
        return {
            "adviser": number,
            "failures": status.failures,
            "locked_seconds": status.locked_seconds,
            "hard_locked": status.hard_locked,
            "numbers": {
                caller: {"attempts": a, "window_left_seconds": left, "consecutive_failures": c}
                for caller, (a, left, c) in status.numbers.items()
            },
            "known_numbers": status.known,
            "why": why,
        }

    def unlock_adviser(self, number: str, by: str) -> None:
        """Lift an adviser's lockout, and audit who did it."""
        self.directory.require(number)
        self.store.unlock(number)
        self.audit.record("adviser.unlocked", adviser=number, by=by, outcome="unlocked")
