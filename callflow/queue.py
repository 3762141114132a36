"""One fair queue across languages: which waiting caller each free agent is offered.

Callers wait in the order they first rang, live callers and call-backs holding their
place together, in every language at once. Free agents are matched to them in that order:
the longest-waiting caller gets a free agent who can serve them (one who speaks their
language, or anyone once their flow has fallen back to English), keeping the agents
whose languages later callers need for those callers where another agent will do, then
longest idle first, and not an agent who already let this caller's ring go unanswered if
another is free. So a Welsh caller who has waited longer is never passed over for a later
English caller when the only free agent speaks Welsh, whichever caller's hold loop asks
first: every caller's hold tick, and the call-back worker, works out the same matching
and acts only on its own part of it.

Only the heads of the queue are read: with ``n`` agents free, at most ``n`` callers can be
matched, so each language's first ``n`` live callers and ``n`` call-backs are all that can
matter (the caller asking is always included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Waiting", "assign"]


class CanServe(Protocol):
    """An agent, as the matching sees them."""

    sees_id: str

    def speaks(self, language: str | None) -> bool: ...


@dataclass(frozen=True)
class Waiting:
    """A caller waiting for an agent: a live call (``kind`` call, key its CallSid) or a
    call-back holding its place (``kind`` callback, key its id)."""

    key: str
    kind: str
    language: str
    arrived_at: float
    #: Their flow has fallen back to English: any agent may take them.
    any_agent: bool = False
    #: Agents whose ring for this caller went unanswered (offered again only if no other).
    tried: frozenset[str] = field(default_factory=frozenset)

    def served_by(self, agent: CanServe) -> bool:
        """Whether ``agent`` can take this caller."""
        return self.any_agent or agent.speaks(self.language)


def assign(free: Sequence[CanServe], waiting: Sequence[Waiting]) -> dict[str, CanServe]:
    """Each waiting caller (by key) matched to the free agent offered to them, longest
    waiting first; ``free`` is longest idle first. Callers no free agent can serve are
    left out."""
    order = sorted(waiting, key=lambda w: (w.arrived_at, w.kind != "call", w.key))
    left = list(free)
    matched: dict[str, CanServe] = {}
    for place, caller in enumerate(order):
        able = [a for a in left if caller.served_by(a)]
        if not able:
            continue
        later = order[place + 1 :]

        def keep_for_later(agent: CanServe, later: Sequence[Waiting] = later) -> int:
            # How many later callers only agents like this one could serve.
            return sum(
                1 for w in later if not w.any_agent and w.language != "en-GB" and agent.speaks(
                    w.language
                )
            )

        best = min(
            able,
            key=lambda a: (keep_for_later(a), a.sees_id in caller.tried, left.index(a)),
        )
        matched[caller.key] = best
        left.remove(best)
        if not left:
            break
    return matched
