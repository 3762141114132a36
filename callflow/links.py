"""The URLs the service hands to Twilio, built on its public base URL.

The webhooks serve these paths; the engine, the hand-off code and the CLI build them here
so every caller agrees on one set.
"""

from __future__ import annotations

__all__ = ["ServiceLinks"]


class ServiceLinks:
    """The URLs the service hands to Twilio, on its public base URL."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

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
