"""The languages calls are served in: English and Welsh.

HMRC's Welsh Language Scheme and the Welsh Language Standards expect a caller who chooses
Welsh to be greeted, verified, served and handed off in Welsh. A call's language is
chosen once, at its start (the number rung, ``?lang=cy`` on the Voice URL, or a keypress
at a bilingual welcome), kept on the session, and carried onto the call record, the
hand-off, the grant and every leg that follows (the specialist hears the whisper in it).

Flows give their prompts per language (docs/flows.md); what the service says outside a
flow (hold music's words, no agent free, the agent has left, apologies) is here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "DEFAULT",
    "LANGUAGE",
    "MESSAGES",
    "NAMES",
    "VOICES",
    "message",
    "resolve",
    "voice",
]

#: The language a call is served in when nothing chose another.
DEFAULT = "en-GB"
#: A language tag as Twilio's <Say> and <Gather> take it.
LANGUAGE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
#: The Amazon Polly voice (through Twilio) each language is spoken in by default.
VOICES = {"en-GB": "Polly.Amy", "cy-GB": "Polly.Gwyneth"}
#: A language's name, in that language (what a console shows).
NAMES = {"en-GB": "English", "cy-GB": "Cymraeg (Welsh)"}

#: What the service says outside any flow, per language. Welsh: plain, as a translator
#: would write it for the phone; docs/welsh.md lists every Welsh text for review.
MESSAGES: dict[str, dict[str, str]] = {
    "holding": {
        "en-GB": "Thank you for holding. A V S T R S agent will be with you shortly.",
        "cy-GB": "Diolch am aros. Bydd un o asiantau V S T R S gyda chi cyn bo hir.",
    },
    "no_agent": {
        "en-GB": (
            "Sorry, no V S T R S agent is free to take your call. You keep your place: we "
            "will call you back on the number your organisation registered for you, and "
            "ask you to verify again before an agent joins. Goodbye."
        ),
        "cy-GB": (
            "Mae'n ddrwg gennym, does dim un o asiantau V S T R S ar gael i gymryd eich "
            "galwad. Rydych yn cadw eich lle: byddwn yn eich ffonio'n ôl ar y rhif a "
            "gofrestrodd eich sefydliad ar eich cyfer, ac yn gofyn i chi ddilysu eto cyn i "
            "asiant ymuno. Hwyl fawr."
        ),
    },
    "no_agent_call_again": {
        "en-GB": (
            "Sorry, no V S T R S agent is free to take your call, and we cannot call you "
            "back on this occasion. Please call again later. Goodbye."
        ),
        "cy-GB": (
            "Mae'n ddrwg gennym, does dim un o asiantau V S T R S ar gael i gymryd eich "
            "galwad, ac ni allwn eich ffonio'n ôl y tro hwn. Ffoniwch eto yn nes ymlaen. "
            "Hwyl fawr."
        ),
    },
    "agent_left": {
        "en-GB": "The V S T R S agent has left the call. Thank you for calling. Goodbye.",
        "cy-GB": "Mae asiant V S T R S wedi gadael yr alwad. Diolch am ffonio. Hwyl fawr.",
    },
}


def resolve(asked: str | None, offered: Iterable[str]) -> str | None:
    """The offered language ``asked`` names (``cy``, ``cy-GB``, ``CY``), or None."""
    if not asked:
        return None
    wanted = asked.strip().lower()
    for language in offered:
        if wanted in {language.lower(), language.split("-")[0].lower()}:
            return language
    return None


def voice(language: str, voices: Mapping[str, str] | None = None) -> dict[str, str]:
    """<Say> attributes for a language: its voice and its tag."""
    chosen = (voices or {}).get(language) or VOICES.get(language) or VOICES[DEFAULT]
    return {"voice": chosen, "language": language if language in VOICES else DEFAULT}


def message(key: str, language: str | None) -> tuple[str, dict[str, str]]:
    """A service message in the call's language (English when there is no translation),
    with the <Say> attributes to speak it."""
    texts = MESSAGES[key]
    chosen = language if language in texts else DEFAULT
    return texts[chosen], voice(chosen)
