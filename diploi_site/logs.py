"""Log lines that say what they are about: the deployment and operation, and which process wrote them.

`log_context(deployment_id=…, operation_id=…)` marks everything logged inside
the block (in this thread or task); the filter copies those values onto each
record. With ``LOG_FORMAT=json`` every line is one JSON object (for log
collectors); otherwise the plain format appends them in brackets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from diploi_site.process import process_name

CONTEXT_FIELDS = ("deployment_id", "operation_id", "task_id")
_context: ContextVar[tuple[tuple[str, object], ...]] = ContextVar("diploi_log_context", default=())


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Add ``values`` (None ones are left out) to every record logged inside the block."""
    merged = {**dict(_context.get()), **{k: v for k, v in values.items() if v is not None}}
    token = _context.set(tuple(merged.items()))
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the current log context and the process's name on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, None)
        for name, value in _context.get():
            setattr(record, name, value)
        record.diploi_process = process_name()
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name))
        record.context = f" [{context}]" if context else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process, message, context ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": getattr(record, "diploi_process", process_name()),
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
