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
from datetime import UTC, datetime

CALL_SID = re.compile(r"\bCA[0-9a-fA-F]{32}\b")


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        found = CALL_SID.search(message)
        if found:
            entry["call_sid"] = found.group(0)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, ensure_ascii=False)


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
