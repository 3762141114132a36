"""What the people on simulated calls do: callers' scripts and dialled parties' behaviour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Callee", "Script", "Step"]

StepKind = Literal["press", "say", "silent", "hangup", "reply"]


@dataclass(frozen=True)
class Step:
    """One thing a person does when the call waits on them."""

    kind: StepKind
    value: str = ""
    confidence: float = 0.92
    after: float = 0.0
    #: For "reply": picks the real step from what was just heard (e.g. which question).
    reply: Callable[[str], Step | None] | None = None

    def describe(self) -> str:
        """How the transcript tells it."""
        if self.kind == "press":
            return f"presses {self.value}"
        if self.kind == "say":
            return f'says "{self.value}"'
        if self.kind == "silent":
            return "says nothing"
        return "hangs up"


#: Asked at each gather when a script is interactive: given what was just heard, what now?
Asker = Callable[[str], Step | None]


@dataclass
class Script:
    """A person's actions at each gather, in order, then how long they will wait on hold.

    At a gather the next step is taken: keys, words, silence or hanging up. Where the call
    waits with nothing to answer (a queue, a conference, a connected call) a ``hang_up``
    step is taken after its ``after`` seconds; with no steps left the person hangs up after
    ``patience`` seconds. With no steps left at a gather they hang up at once.
    """

    steps: list[Step] = field(default_factory=list)
    patience: float = 60.0
    ask: Asker | None = None

    def press(self, digits: str) -> Script:
        """Key digits (include the finish key, e.g. ``1001#``, to end the gather with it)."""
        self.steps.append(Step("press", digits))
        return self

    def say(self, words: str, confidence: float = 0.92) -> Script:
        """Speak words (recognised as given)."""
        self.steps.append(Step("say", words, confidence))
        return self

    def answer(self, answers: dict[str, str]) -> Script:
        """At the next gather, say the answer whose keyword is in what was heard.

        ``{"first school": "Hill Top", "colour": "blue"}`` answers whichever security
        question is asked; keys (digits only) are pressed rather than said.
        """

        def choose(heard: str) -> Step | None:
            lowered = heard.lower()
            for keyword, reply in answers.items():
                if keyword.lower() in lowered:
                    return (
                        Step("press", reply) if reply.rstrip("#").isdigit() else Step("say", reply)
                    )
            return Step("silent")

        self.steps.append(Step("reply", reply=choose))
        return self

    def silent(self) -> Script:
        """Give no input at the next gather."""
        self.steps.append(Step("silent"))
        return self

    def hang_up(self, after: float = 0.0) -> Script:
        """Hang up (at a gather at once; while waiting, after ``after`` seconds)."""
        self.steps.append(Step("hangup", after=after))
        return self

    def next_for_gather(self, heard: str) -> Step | None:
        """The step to take at a gather, or None when the script has run out."""
        if self.ask is not None:
            return self.ask(heard)
        step = self.steps.pop(0) if self.steps else None
        if step is not None and step.kind == "reply" and step.reply is not None:
            return step.reply(heard)
        return step

    def wait_limit(self) -> float:
        """How long this person will wait where nothing is asked of them."""
        if self.ask is None and self.steps and self.steps[0].kind == "hangup":
            return self.steps.pop(0).after
        return self.patience


@dataclass
class Callee:
    """How a dialled number or client answers: answered, busy, no-answer or failed.

    ``answered_by`` is what Twilio's answering machine detection reports when the call
    asked for it: ``human``, ``machine_start``, ``fax`` or ``unknown``.
    """

    outcome: Literal["answered", "busy", "no-answer", "failed"] = "answered"
    after: float = 3.0
    script: Script = field(default_factory=Script)
    answered_by: str = "human"

    @classmethod
    def voicemail(cls, after: float = 20.0, listens: float = 60.0) -> Callee:
        """An answering machine: picks up, records whatever it hears in silence, then stops."""
        script = Script(patience=listens, ask=lambda _heard: Step("silent"))
        return cls("answered", after=after, script=script, answered_by="machine_start")
