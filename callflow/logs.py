"""Logging set-up: plain lines, or JSON lines (CALLFLOW_LOG_FORMAT=json) for a log pipeline.

Every call-related line names its CallSid (the house style puts it in the message); the
JSON form also lifts it into a ``call_sid`` field. Nothing logged ever holds a PIN or an
answer: those never reach a log call in the first place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import time
from typing import Any

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


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Standard error, each record written whole by one ``write(2)``, without the handler's
    lock.

    Every webhook logs a line from one of a worker's threads; through StreamHandler each
    takes one lock around formatting, the buffered write and the flush, and under load the
    threads queue on it (in gunicorn it was a tenth of a webhook's time holding the GIL).
    A line of up to ``PIPE_BUF`` bytes written in one call reaches a pipe or a file whole,
    so no lock is needed; a longer one (a traceback) takes the lock, so it is not
    interleaved with another long one. A stream without a file descriptor (a test's
    StringIO) is written as StreamHandler writes it.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        try:
            self.fd: int | None = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None

    def handle(self, record: logging.LogRecord) -> bool:
        if self.fd is None:
            return super().handle(record)
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if self.fd is None:
            super().emit(record)
            return
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            if len(data) <= select.PIPE_BUF:
                written = os.write(self.fd, data)
                if written == len(data):
                    return
                data = data[written:]
            with self.lock or contextlib.nullcontext():
                while data:
                    data = data[os.write(self.fd, data) :]
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure_logging() -> None:
    """Set up the root logger once (plain or JSON lines), and quieten transitions."""
    root = logging.getLogger()
    if not root.handlers:
        handler = LineHandler()
        if os.environ.get("CALLFLOW_LOG_FORMAT", "").lower() == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    # What no handler here prints, records need not gather (the Logging HOWTO's
    # "Optimization"): the caller's file and line. Every webhook logs a line, and
    # findCaller walks the stack for each. (Flow tests filter by thread: kept. The process
    # id is kept too: gunicorn's own log lines print it.)
    logging._srcfile = None
    logging.logMultiprocessing = False
    # transitions logs every callback at INFO: far too much for a webhook service.
    logging.getLogger("transitions").setLevel(logging.WARNING)
