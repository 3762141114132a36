"""The URLs the service hands to Twilio, built on its public base URL.

The webhooks serve these paths; the engine, the hand-off code and the CLI build them here
so every caller agrees on one set.
"""

from __future__ import annotations

from .errors import ConfigError

__all__ = ["ServiceLinks"]


class ServiceLinks:
    """The URLs the service hands to Twilio, on its public base URL."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    @classmethod
    def at(cls, public_base_url: str | None, reached_at: str | None = None) -> ServiceLinks:
        """The one way to build the service's links: on ``PUBLIC_BASE_URL`` where it is set
        (Twilio signs and calls that address), else on the address this request reached
        (a webhook's or a console's), else on ``reached_at`` given by a caller off any
        request (the sandbox's or the demo's own address). Nothing at all to build on is a
        setting missing, said plainly: Twilio could not fetch a call's flow."""
        base = public_base_url or reached_at
        if not base:
            raise ConfigError("PUBLIC_BASE_URL is needed: Twilio fetches the call's flow from it")
        return cls(base)

    def voice_url(
        self, *, flow: str | None = None, language: str | None = None, relay: bool = False
    ) -> str:
        """The Voice URL a Twilio number is configured with: ``flow`` other than the default,
        the line's ``language`` (a Welsh number's), ``relay`` for the Relay UK number."""
        query = [f"flow={flow}"] if flow else []
        query += [f"lang={language}"] if language else []
        query += ["relay=1"] if relay else []
        return f"{self.base}/voice/incoming" + (f"?{'&'.join(query)}" if query else "")

    def call_status(self) -> str:
        """The status callback a Twilio number is configured with."""
        return f"{self.base}/voice/status"

    def step(self, step: int, event: str | None = None) -> str:
        """``/voice/step?s=N`` (and ``&e=EVENT``) on the public base URL."""
        url = f"{self.base}/voice/step?s={step}"
        return f"{url}&e={event}" if event else url

    def conference_events(self) -> str:
        """Conference status callbacks."""
        return f"{self.base}/voice/conference"

    def leg_status(self, role: str, call_sid: str) -> str:
        """Status callbacks of a leg dialled for a call (an agent's, a specialist's)."""
        return f"{self.base}/voice/leg?role={role}&call={call_sid}"

    def meeting_status(self, meeting_id: str) -> str:
        """Status callbacks of an outbound meeting call."""
        return f"{self.base}/voice/leg?role=meeting&ref={meeting_id}"

    def callback_status(self, callback_id: str) -> str:
        """Status callbacks of a call-back's call."""
        return f"{self.base}/voice/leg?role=callback&ref={callback_id}"

    def hold(self, call_sid: str) -> str:
        """The wait URL of a caller's conference."""
        return f"{self.base}/voice/hold?call={call_sid}"

    def incoming(self, flow: str, ref: str, language: str | None = None) -> str:
        """The Voice URL for an outbound leg running ``flow`` about ``ref`` (in ``language``:
        a Welsh call's specialist hears the whisper in Welsh)."""
        lang = f"&lang={language}" if language else ""
        return f"{self.base}/voice/incoming?flow={flow}&ref={ref}{lang}"
