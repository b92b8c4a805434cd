"""Log set-up shared by the worker and the gateway: text for a developer's terminal, one JSON
object per line for production (`CONTRACTING_LOG_FORMAT=json`), each record carrying the
`mission_id` and `event_id` of the work it was written for (`observability.context`).

Callers only enqueue: a `QueueHandler` hands records to a `QueueListener` thread that formats
and writes them, so a worker's tasks never wait on a handler's lock or on the terminal (under
load, 18 % of the worker's time was spent logging, mostly waiting on that lock)."""

from __future__ import annotations

import atexit
import copy
import json
import logging
import logging.handlers
import queue
from datetime import UTC, datetime
from typing import IO, Any, Literal

from temporalio import activity, workflow

from observability import context

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
"""uvicorn's loggers, which it gives handlers of their own: routed to ours instead."""

CONTEXT_FIELDS = ("mission_id", "event_id", "event_type")

TEMPORAL_EXTRAS = ("temporal_activity", "temporal_workflow")
"""What the SDK's activity and workflow loggers put on their records (type, ids, attempt): a
JSON line carries it as a field, instead of the SDK's copy of it in the message."""

_listener: logging.handlers.QueueListener | None = None


class ContextFilter(logging.Filter):
    """Copy the current context's fields onto the record, in the caller's context (the
    listener's thread has none): `record.mission_id`, `record.event_id`..."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = context.current()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name))
        return True


class TextFormatter(logging.Formatter):
    """The classic line, with ` [mission_id=… event_id=…]` when known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        known = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if _has(record, name)]
        record.context = f" [{' '.join(known)}]" if known else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context
    fields that are known, the exception's traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if _has(record, name):
                entry[name] = getattr(record, name)
        for name in TEMPORAL_EXTRAS:
            if _has(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def _has(record: logging.LogRecord, name: str) -> bool:
    return getattr(record, name, None) is not None


class Enqueuer(logging.handlers.QueueHandler):
    """A QueueHandler that keeps the message and the traceback apart (the stock one folds the
    traceback into the message, which a JSON line would then carry twice or mangle)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy with the message merged (its arguments may change once the call returns);
        the formatting proper (time, JSON) is left to the listener's thread."""
        record = copy.copy(record)
        record.message = record.getMessage()
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info = record.message, None, None
        return record


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(
    log_format: LogFormat = "text", level: int = logging.INFO, stream: IO[str] | None = None
) -> None:
    """Route the root logger (and uvicorn's) through a queue to one stream handler (on
    `stream`, stderr by default) that a listener thread runs; calling it again replaces the
    previous set-up."""
    global _listener
    stop_logging()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler(stream)
    writer.setFormatter(formatter(log_format))
    enqueuer = Enqueuer(records)
    enqueuer.addFilter(ContextFilter())
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(enqueuer)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # A JSON line has the activity's or workflow's info as a field (TEMPORAL_EXTRAS).
    activity.logger.activity_info_on_message = log_format != "json"
    workflow.logger.workflow_info_on_message = log_format != "json"
    _listener = logging.handlers.QueueListener(records, writer, respect_handler_level=True)
    _listener.start()
    atexit.register(stop_logging)


def stop_logging() -> None:
    """Write what is still queued and stop the listener thread."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
