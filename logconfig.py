"""Log output, one line per record: JSON objects (LOG_FORMAT=json, the default: every line parses) or readable
text for a person at a terminal (LOG_FORMAT=text)."""

import datetime as dt
import json
import logging
import sys
import threading

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Loggers that write whole MongoDB commands at DEBUG (inserted users with their password hashes,
# queued emails with live links): kept at INFO or above whatever LOG_LEVEL says (CWE-532).
CHATTY_LOGGERS = ("pymongo",)


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message"}, then the record's structured `fields`, then "exception"."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in (getattr(record, "fields", None) or {}).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ASCII-only JSON: newlines and control characters in a message are escaped, so a value can
        # never start a forged log line (CWE-117).
        return json.dumps(entry, default=str)


class TextFormatter(JsonFormatter):
    """`2026-12-06T22:30:01.150Z INFO accounts: message key=value ...`: the same record as one readable line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = json.loads(super().format(record))
        head = f"{entry.pop('time')} {entry.pop('level')} {entry.pop('logger')}: {entry.pop('message')}"
        rest = [f"{name}={value}" for name, value in entry.items() if name not in ("exception", "stack")]
        tail = [entry[name] for name in ("exception", "stack") if name in entry]
        # Control characters (a newline in a message, a traceback's lines) are escaped as in JSON, so a
        # value can never start a forged line, and one event stays one line (CWE-117).
        return "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in " ".join([head, *rest, *tail])
        )


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def parse_level(raw: str) -> int:
    """LOG_LEVEL as a logging level; ValueError naming the variable when it is not one."""
    name = (raw or "INFO").strip().upper()
    if name not in LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, got {raw!r}")
    return getattr(logging, name)


def configure(level: int, stream=None, form: str = "json") -> None:
    """Send every log record, warnings and uncaught exceptions included, to stream as lines of `form`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(FORMATTERS[form]())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    logging.captureWarnings(True)
    crashes = logging.getLogger("accounts")
    sys.excepthook = lambda *exc_info: crashes.critical("uncaught exception", exc_info=exc_info)
    threading.excepthook = lambda args: crashes.critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
