"""Service settings, read from the environment (or given directly in tests).

Environment variables:
    REDIS_URL                  Redis to use; unset means the embedded in-memory store.
    TWILIO_ACCOUNT_SID         the Twilio account (for the REST calls the service makes).
    TWILIO_AUTH_TOKEN          the account's auth token, used to check X-Twilio-Signature.
    VSTRS_NUMBER               the number outbound calls to agents and specialists come from.
    TWILIO_API_BASE_URL        where the REST API is (the local simulator's); default Twilio's.
    CALLFLOW_AGENT_WAIT        seconds a verified caller waits for an agent before a polite end.
    CALLFLOW_WRAP_UP           seconds of an agent's after-call work before they are offered
                               the next caller (default 60; Ready ends it sooner).
    CALLFLOW_HOLD_WARNING      seconds on hold after which the agent's console warns (120).
    CALLFLOW_HANDOFF_SHARE_ALERT  the hand-off share of verified calls over which the
                               supervisor's and auditor's pages warn, and a metric says so
                               (0.15).
    CALLFLOW_SPECIALIST_WRAP_UP  minutes the specialist who took a hand-off still sees its
                               customer after the call, read-only (default 15).
    PUBLIC_BASE_URL            the URL Twilio reaches the service at (behind a proxy or tunnel).
    CALLFLOW_SECRET_KEY        server-held key for PIN and answer hashes (not kept in Redis).
    CALLFLOW_SIGNATURE_CHECK   "on" (default) or "off"; off is for local experiments only.
    CALLFLOW_FLOWS_DIR         where the flow YAML files live (default: ./flows).
    CALLFLOW_HASH_COST         log2 of the scrypt work factor for new hashes (default 14).
    CALLFLOW_GRANT_FRESHNESS   seconds a confirmation that a grant's call is live lasts (10).
    CALLFLOW_GRANT_CHECK_BUDGET  seconds a grant question may wait for Twilio (default 2).
    CALLFLOW_METRICS_TOKEN     bearer token a Prometheus scrape of /metrics must present.
    CALLFLOW_AUDIT_CHECKPOINTS folder for signed audit checkpoints (durable storage).
    CALLFLOW_TRUSTED_PROXIES   proxies in front that set X-Forwarded-For (default 0).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .store.base import Guard

DEFAULT_FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name) or default)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds") from exc
    if not value > 0:
        raise ConfigError(f"{name} must be more than 0")
    return value


def _minutes(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    text = env.get(name)
    if text is None or not text.strip():
        return default
    return parse_minutes(text, name)


def parse_minutes(text: str, what: str = "retries") -> tuple[int, ...]:
    """``"30,120,1440"`` -> (30, 120, 1440): minutes before each retry (empty: none)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() and 1 <= int(p) <= 7 * 24 * 60 for p in parts) or len(parts) > 10:
        raise ConfigError(
            f"{what}: up to 10 comma-separated minutes, each 1 to 10080, like 30,120,1440"
        )
    return tuple(int(p) for p in parts)


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know at start-up."""

    redis_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    vstrs_number: str = "+441632960999"
    twilio_api_base_url: str | None = None
    public_base_url: str | None = None
    secret_key: bytes = b""
    signature_check: bool = True
    flows_dir: Path = DEFAULT_FLOWS_DIR
    hash_cost: int = 14
    # VSTRS verification rules (the lockout model: docs/lockout.md). Each calling number
    # gets number_attempts per number_window_seconds for an adviser, then waits. At
    # lockout_threshold consecutive failures across numbers the adviser is locked for
    # lockout_seconds to numbers that have not verified them in known_number_days; at
    # lockout_hard_limit (NIST SP 800-63B's ceiling is 100) until a known number verifies
    # or an admin unlocks. Consecutive failures are forgotten after failure_window_seconds
    # without one.
    max_tries_per_call: int = 3
    number_attempts: int = 5
    number_window_seconds: int = 15 * 60
    lockout_threshold: int = 30
    lockout_seconds: int = 30 * 60
    lockout_hard_limit: int = 100
    known_number_days: int = 30
    failure_window_seconds: int = 24 * 3600
    # Relay UK (text relay): calls from these numbers (the relay platform's caller IDs), or
    # to a Voice URL with ?relay=1, get input timeouts this many times longer, and their
    # silences do not use up the call's tries (up to relay_max_silences).
    relay_numbers: tuple[str, ...] = ()
    relay_timeout_factor: int = 3
    relay_max_silences: int = 10
    # Caller to agent: how long an agent's phone rings, how long a caller waits in all.
    agent_ring_seconds: int = 20
    agent_wait_seconds: int = 180
    # After a call: the agent's after-call work (then they are offered the next caller),
    # the console's warning for a caller on hold too long, and how long the specialist who
    # took a hand-off keeps its customer in view, read-only, for their wrap-up.
    agent_wrap_up_seconds: int = 60
    hold_warning_seconds: int = 120
    handoff_share_alert: float = 0.15
    specialist_wrap_up_seconds: int = 15 * 60
    # A disclosure grant's backstop: it never outlives this, whatever callbacks are lost.
    grant_max_seconds: int = 4 * 3600
    # "Authorised" is never based on leg liveness older than this; a question asks Twilio
    # for both legs (in parallel, within the budget) when no confirmation is that fresh.
    grant_freshness_seconds: float = 10.0
    grant_check_budget_seconds: float = 2.0
    # Audit entries older than this are archived to a file and trimmed (callflow audit archive).
    audit_retention_days: int = 400
    # Where signed audit checkpoints are kept outside Redis (durable storage), so a cut-off
    # or lost audit log is detected; unset: checkpoints only go to the log.
    audit_checkpoints_dir: Path | None = None
    # Call sessions: a backstop lifetime while live, and how long to keep them after the end.
    session_ttl_seconds: int = 12 * 3600
    ended_session_ttl_seconds: int = 6 * 3600
    # How long a webhook may hold a call's lease, and wait for another to let go. The wait
    # is longer than the lease: when a worker dies holding it, Twilio's retry waits it out
    # instead of apologising. (A webhook that outlives its lease is still safe: its save is a
    # compare-and-set on the session's revision.)
    lease_ms: int = 3000
    lease_wait_ms: int = 4000
    # Redis: per-command socket timeout; the circuit breaker opens after this many failures
    # in a row and stays open this long; a Twilio webhook's time budget (Twilio waits 15 s).
    redis_socket_timeout: float = 2.0
    redis_breaker_threshold: int = 5
    redis_breaker_cooldown: float = 5.0
    webhook_budget_seconds: float = 10.0
    # Lines that check something for a caller (the officer verification line): how many
    # checks one calling number may make in a window.
    caller_check_limit: int = 5
    caller_check_window_seconds: int = 3600
    # Outbound meeting calls: the number they come from, and the minutes to wait before
    # each retry after an attempt that reached nobody (no answer, busy, voicemail).
    outbound_number: str = "+441632960998"
    meeting_retry_minutes: tuple[int, ...] = (30, 120, 1440)
    # Call-backs (callflow/callbacks.py): minutes before each retry after a try that reached
    # nobody or failed verification, and how long one may wait before it is dropped.
    callback_retry_minutes: tuple[int, ...] = (5, 15, 30)
    callback_expiry_hours: int = 72
    # How long each call's trace (its steps, for designers answering a complaint) is kept.
    trace_retention_days: int = 30
    # How many recent real calls of a flow a publish replays against the candidate (0: none).
    replay_calls: int = 200
    # Fewer calls compared than this (or under 95% of those recorded) and a publish says
    # the replay means little; --strict refuses then.
    replay_min_compared: int = 20
    # How long a settled meeting's record (the customer's name and number) is kept.
    meeting_retention_days: int = 90
    #: How many of an officer's working days ahead a meeting's times are offered.
    meeting_horizon_days: int = 10
    # Where the retention pass archives audit entries past audit_retention_days (their
    # calling numbers and addresses replaced by keyed pseudonyms); unset: not archived.
    audit_archive_dir: Path | None = None
    # How often a worker looks for a newly published flow version.
    flow_release_check_seconds: float = 2.0
    # /metrics is served only to a scraper presenting this bearer token (Prometheus's
    # `authorization: {credentials: ...}`); unset: not served by the web service at all
    # (run `callflow metrics --bind ADDR` on a private address instead).
    metrics_token: str | None = field(default=None, repr=False)
    # How many proxies in front of the service set X-Forwarded-For (werkzeug's ProxyFix):
    # the client address console sign-in throttling counts is the one they saw.
    trusted_proxies: int = 0
    embedded_key_generated: bool = field(default=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from environment variables."""
        env = os.environ if env is None else env
        key = env.get("CALLFLOW_SECRET_KEY", "")
        check = env.get("CALLFLOW_SIGNATURE_CHECK", "on").strip().lower()
        if check not in {"on", "off", "true", "false", "1", "0"}:
            raise ConfigError(f"CALLFLOW_SIGNATURE_CHECK must be 'on' or 'off', not {check!r}")
        try:
            cost = int(env.get("CALLFLOW_HASH_COST", "14"))
        except ValueError as exc:
            raise ConfigError("CALLFLOW_HASH_COST must be a whole number") from exc
        settings = cls(
            redis_url=env.get("REDIS_URL") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            vstrs_number=env.get("VSTRS_NUMBER") or "+441632960999",
            twilio_api_base_url=env.get("TWILIO_API_BASE_URL") or None,
            agent_wait_seconds=_int(env, "CALLFLOW_AGENT_WAIT", 180),
            agent_wrap_up_seconds=_int(env, "CALLFLOW_WRAP_UP", 60),
            hold_warning_seconds=_int(env, "CALLFLOW_HOLD_WARNING", 120),
            handoff_share_alert=_float(env, "CALLFLOW_HANDOFF_SHARE_ALERT", 0.15),
            specialist_wrap_up_seconds=_int(env, "CALLFLOW_SPECIALIST_WRAP_UP", 15) * 60,
            relay_numbers=tuple(
                n.strip() for n in env.get("CALLFLOW_RELAY_NUMBERS", "").split(",") if n.strip()
            ),
            relay_timeout_factor=_int(env, "CALLFLOW_RELAY_TIMEOUT_FACTOR", 3),
            audit_retention_days=_int(env, "CALLFLOW_AUDIT_RETENTION_DAYS", 400),
            audit_checkpoints_dir=(
                Path(env["CALLFLOW_AUDIT_CHECKPOINTS"])
                if env.get("CALLFLOW_AUDIT_CHECKPOINTS")
                else None
            ),
            public_base_url=env.get("PUBLIC_BASE_URL") or None,
            secret_key=key.encode(),
            signature_check=check in {"on", "true", "1"},
            flows_dir=Path(env.get("CALLFLOW_FLOWS_DIR") or DEFAULT_FLOWS_DIR),
            hash_cost=cost,
            redis_socket_timeout=_float(env, "CALLFLOW_REDIS_TIMEOUT", 2.0),
            webhook_budget_seconds=_float(env, "CALLFLOW_WEBHOOK_BUDGET", 10.0),
            caller_check_limit=_int(env, "CALLFLOW_CALLER_CHECK_LIMIT", 5),
            caller_check_window_seconds=_int(env, "CALLFLOW_CALLER_CHECK_WINDOW", 3600),
            outbound_number=env.get("CALLFLOW_OUTBOUND_NUMBER") or "+441632960998",
            meeting_retry_minutes=_minutes(env, "CALLFLOW_MEETING_RETRIES", (30, 120, 1440)),
            meeting_retention_days=_int(env, "CALLFLOW_MEETING_RETENTION_DAYS", 90),
            meeting_horizon_days=_int(env, "CALLFLOW_MEETING_HORIZON_DAYS", 10),
            callback_retry_minutes=_minutes(env, "CALLFLOW_CALLBACK_RETRIES", (5, 15, 30)),
            callback_expiry_hours=_int(env, "CALLFLOW_CALLBACK_EXPIRY_HOURS", 72),
            trace_retention_days=_int(env, "CALLFLOW_TRACE_RETENTION_DAYS", 30),
            replay_calls=_int(env, "CALLFLOW_REPLAY_CALLS", 200),
            replay_min_compared=_int(env, "CALLFLOW_REPLAY_MIN_COMPARED", 20),
            audit_archive_dir=(
                Path(env["CALLFLOW_AUDIT_ARCHIVE"]) if env.get("CALLFLOW_AUDIT_ARCHIVE") else None
            ),
            flow_release_check_seconds=_float(env, "CALLFLOW_FLOW_RELEASE_CHECK", 2.0),
            grant_freshness_seconds=_float(env, "CALLFLOW_GRANT_FRESHNESS", 10.0),
            grant_check_budget_seconds=_float(env, "CALLFLOW_GRANT_CHECK_BUDGET", 2.0),
            metrics_token=env.get("CALLFLOW_METRICS_TOKEN") or None,
            number_attempts=_int(env, "CALLFLOW_NUMBER_ATTEMPTS", 5),
            lockout_threshold=_int(env, "CALLFLOW_LOCKOUT_THRESHOLD", 30),
            lockout_seconds=_int(env, "CALLFLOW_LOCKOUT_MINUTES", 30) * 60,
            lockout_hard_limit=_int(env, "CALLFLOW_LOCKOUT_HARD_LIMIT", 100),
            known_number_days=_int(env, "CALLFLOW_KNOWN_NUMBER_DAYS", 30),
            trusted_proxies=_int(env, "CALLFLOW_TRUSTED_PROXIES", 0),
        )
        return settings.checked()

    @property
    def guard(self) -> Guard:
        """The lockout model's figures, as the store applies them."""
        return Guard(
            number_attempts=self.number_attempts,
            number_window=self.number_window_seconds,
            adviser_threshold=self.lockout_threshold,
            lock_seconds=self.lockout_seconds,
            hard_limit=self.lockout_hard_limit,
            known_seconds=self.known_number_days * 24 * 3600,
            failure_memory=self.failure_window_seconds,
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with some fields replaced (unknown names are an error)."""
        names = {f.name for f in fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        values = dict(overrides)
        if isinstance(values.get("secret_key"), str):
            values["secret_key"] = values["secret_key"].encode()
        if "flows_dir" in values:
            values["flows_dir"] = Path(values["flows_dir"])
        if values.get("audit_archive_dir"):
            values["audit_archive_dir"] = Path(values["audit_archive_dir"])
        if values.get("audit_checkpoints_dir"):
            values["audit_checkpoints_dir"] = Path(values["audit_checkpoints_dir"])
        return replace(self, **values).checked()

    def checked(self) -> Settings:
        """Check the settings hang together; fill in the embedded secret key."""
        if not 10 <= self.hash_cost <= 20:
            raise ConfigError("CALLFLOW_HASH_COST must be between 10 and 20")
        if self.public_base_url and not self.public_base_url.startswith(("http://", "https://")):
            raise ConfigError("PUBLIC_BASE_URL must start with http:// or https://")
        if self.secret_key and len(self.secret_key) < 16:
            raise ConfigError("CALLFLOW_SECRET_KEY must be at least 16 characters")
        if self.webhook_budget_seconds + self.redis_socket_timeout > 14:
            raise ConfigError(
                "the webhook budget plus the Redis socket timeout must stay under Twilio's "
                "15 seconds (keep it at 14 or less)"
            )
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise ConfigError("CALLFLOW_METRICS_TOKEN must be at least 16 characters")
        if not 1 <= self.number_attempts <= self.lockout_threshold < self.lockout_hard_limit <= 100:
            raise ConfigError(
                "lockout figures must rise: 1 <= CALLFLOW_NUMBER_ATTEMPTS <= "
                "CALLFLOW_LOCKOUT_THRESHOLD < CALLFLOW_LOCKOUT_HARD_LIMIT <= 100 (NIST SP "
                "800-63B allows at most 100 consecutive failures)"
            )
        if not 0 <= self.replay_calls <= 5000:
            raise ConfigError("CALLFLOW_REPLAY_CALLS must be 0 to 5000")
        if not 0 <= self.replay_min_compared <= 5000:
            raise ConfigError("CALLFLOW_REPLAY_MIN_COMPARED must be 0 to 5000")
        if not 1 <= self.trace_retention_days <= 400:
            raise ConfigError("CALLFLOW_TRACE_RETENTION_DAYS must be 1 to 400")
        if not 1 <= self.callback_expiry_hours <= 30 * 24:
            raise ConfigError("CALLFLOW_CALLBACK_EXPIRY_HOURS must be 1 to 720")
        if not 0 <= self.agent_wrap_up_seconds <= 3600:
            raise ConfigError("CALLFLOW_WRAP_UP must be 0 to 3600 seconds")
        if not 0 < self.handoff_share_alert <= 1:
            raise ConfigError("CALLFLOW_HANDOFF_SHARE_ALERT must be a share above 0, at most 1")
        if not 1 <= self.hold_warning_seconds <= 3600:
            raise ConfigError("CALLFLOW_HOLD_WARNING must be 1 to 3600 seconds")
        if not 0 <= self.specialist_wrap_up_seconds <= 8 * 3600:
            raise ConfigError("CALLFLOW_SPECIALIST_WRAP_UP must be 0 to 480 minutes")
        if not 0 <= self.trusted_proxies <= 5:
            raise ConfigError("CALLFLOW_TRUSTED_PROXIES must be 0 to 5")
        if not self.secret_key:
            if self.redis_url:
                raise ConfigError(
                    "CALLFLOW_SECRET_KEY is required with REDIS_URL: PIN and answer hashes "
                    "kept in Redis are keyed with it"
                )
            # The embedded store lives and dies with the process, so a key that does too is fine.
            return replace(self, secret_key=secrets.token_bytes(32), embedded_key_generated=True)
        return self
