"""Reading TwiML the way Twilio does: parse, check nesting, or report the error code.

Twilio reports a document it cannot parse as error 12100 and one that breaks the TwiML
schema (unknown verb, verb in the wrong place, bad attribute value) as 12200; it does not
guess at what was meant, and neither does the simulator.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

__all__ = ["TwimlError", "parse_twiml"]

#: Verbs a <Response> may hold.
VERBS = frozenset(
    {"Say", "Play", "Pause", "Gather", "Dial", "Enqueue", "Leave", "Hangup", "Redirect", "Reject"}
)
#: Real TwiML the simulator does not play: reported rather than skipped silently.
NOT_SIMULATED = frozenset(
    {"Record", "Connect", "Start", "Stop", "Pay", "Refer", "Prompt", "Sms", "Message"}
)
_CHILDREN = {
    "Gather": {"Say", "Play", "Pause"},
    "Dial": {"Number", "Client", "Conference", "Queue", "Sip", "Sim", "Application"},
    "Enqueue": {"Task"},
    "Say": {"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"},
}
_BOOLEAN_ATTRS = {
    "actionOnEmptyResult",
    "startConferenceOnEnter",
    "endConferenceOnExit",
    "muted",
    "hangupOnStar",
    "record",
}
_METHODS = {"GET", "POST"}


@dataclass(frozen=True)
class TwimlError(Exception):
    """A TwiML document Twilio would refuse, with Twilio's error code."""

    code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _check(element: ET.Element, parent: str) -> None:
    tag = element.tag
    allowed = _CHILDREN.get(parent)
    if parent == "Response":
        if tag in NOT_SIMULATED:
            raise TwimlError(12200, f"<{tag}> is valid TwiML the simulator does not play")
        if tag not in VERBS:
            raise TwimlError(
                12200, f"Schema validation warning: unknown verb <{tag}> in <Response>"
            )
    elif allowed is None or tag not in allowed:
        raise TwimlError(
            12200, f"Schema validation warning: <{tag}> cannot be nested in <{parent}>"
        )
    for name, value in element.attrib.items():
        if name in _BOOLEAN_ATTRS and value not in {"true", "false"}:
            raise TwimlError(
                12200, f"<{tag}> attribute {name} must be true or false, not {value!r}"
            )
        if name.lower().endswith("method") and value.upper() not in _METHODS:
            raise TwimlError(12200, f"<{tag}> attribute {name} must be GET or POST, not {value!r}")
        if name in {"timeout", "numDigits", "length", "loop", "timeLimit"} and not value.isdigit():
            raise TwimlError(
                12200, f"<{tag}> attribute {name} must be a whole number, not {value!r}"
            )
    if tag == "Gather" and "input" in element.attrib:
        parts = set(element.attrib["input"].split())
        if not parts or not parts <= {"dtmf", "speech"}:
            raise TwimlError(12200, "<Gather> input must be dtmf, speech or 'dtmf speech'")
    if tag == "Dial":
        nouns = list(element)
        text = (element.text or "").strip()
        if len(nouns) > 1 and any(n.tag in {"Conference", "Queue"} for n in nouns):
            raise TwimlError(12200, "<Dial> holds one <Conference> or <Queue> and nothing else")
        if not nouns and not text:
            raise TwimlError(12200, "<Dial> needs a number or a noun")
    if (
        tag in {"Enqueue", "Redirect", "Play"}
        and not (element.text or "").strip()
        and tag != "Play"
    ):
        raise TwimlError(12200, f"<{tag}> needs a body")
    for child in element:
        _check(child, tag)


def parse_twiml(body: bytes) -> list[ET.Element]:
    """The verbs of a TwiML document, or TwimlError (12100 parse, 12200 schema)."""
    try:
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise TwimlError(12100, f"Document parse failure: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(
            12100, f"Document parse failure: root element is <{root.tag}>, not <Response>"
        )
    for verb in root:
        _check(verb, "Response")
    return list(root)
