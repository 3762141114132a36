"""Logging set-up: plain lines, or JSON lines (CALLFLOW_LOG_FORMAT=json) for a log pipeline.

Every call-related line names its CallSid (the house style puts it in the message); the
JSON form also lifts it into a ``call_sid`` field. Nothing logged ever holds a PIN or an
answer: those never reach a log call in the first place.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time

CALL_SID = re.compile(r"\bCA[0-9a-fA-F]{32}\b")
#: A string as JSON (what ``json.dumps(..., ensure_ascii=False)`` writes for it).
_string = json.encoder.encode_basestring


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, and
    ``call_sid`` and ``error`` where there are any.

    Every webhook logs a line, so the line is built by hand (the same text ``json.dumps``
    writes, with C-accelerated string escaping) and the timestamp's date and time to the
    second are kept from one line to the next: half the cost of a dict through
    ``json.dumps`` and ``datetime.isoformat`` on each.
    """

    def __init__(self) -> None:
        super().__init__()
        # (second, its text), replaced whole: threads share the formatter.
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (
                second,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
            )
        millis = int((created - second) * 1000)
        return f"{cached[1]}.{millis:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line = (
            f'{{"ts": "{self._timestamp(record.created)}", '
            f'"level": {_string(record.levelname.lower())}, '
            f'"logger": {_string(record.name)}, "message": {_string(message)}'
        )
        found = CALL_SID.search(message)
        if found:
            line += f', "call_sid": "{found.group(0)}"'
        if record.exc_info:
            error = self.formatException(record.exc_info).splitlines()[-1]
            line += f', "error": {_string(error)}'
        return line + "}"


def configure_logging() -> None:
    """Set up the root logger once (plain or JSON lines), and quieten transitions."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        if os.environ.get("CALLFLOW_LOG_FORMAT", "").lower() == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    # What no handler here prints, records need not gather (the Logging HOWTO's
    # "Optimization"): the caller's file and line and the process. Every webhook logs a
    # line, and findCaller walks the stack for each. (Flow tests filter by thread: kept.)
    logging._srcfile = None
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # transitions logs every callback at INFO: far too much for a webhook service.
    logging.getLogger("transitions").setLevel(logging.WARNING)
