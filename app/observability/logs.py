"""Structured logs: one JSON object a line (structlog over the standard library's logging, so the
lines of uvicorn and of every `logging.getLogger` are JSON too), with the request id of the
request being served. Personal data is scrubbed from every line: mainland mobile and landline
numbers and resident ID numbers are replaced wherever they appear (messages, exceptions, fields).

`WANGGE_LOG_FORMAT=text` gives the same fields as readable lines (for a developer's terminal)."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# A resident ID (18 characters, the last may be X), a mobile number (1[3-9] + 9 digits, maybe
# +86 and separators), a landline (0 + area code + 7-8 digits). Not inside longer digit runs
# (ids, hashes, timestamps).
_ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}\d{2}\d{2}\d{3}[\dXx](?![0-9A-Za-z])"
)
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?![0-9A-Za-z])")
_LANDLINE = re.compile(r"(?<![0-9A-Za-z-])0\d{2,3}-?\d{7,8}(?![0-9A-Za-z])")


def scrub(text: str) -> str:
    text = _ID_NUMBER.sub("[id-number]", text)
    text = _MOBILE.sub("[phone]", text)
    return _LANDLINE.sub("[phone]", text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The last processor before rendering: no personal data leaves in a log line."""
    for key, value in list(event.items()):
        event[key] = _scrub_value(value)
    return event


_configured = False


def configure_logging(fmt: str | None = None, level: int = logging.INFO) -> None:
    """JSON lines on stderr for the root logger (idempotent: the first call wins)."""
    global _configured
    if _configured:
        return
    _configured = True
    fmt = fmt or os.environ.get("WANGGE_LOG_FORMAT", "json")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "text"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("wangge")
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "wangge":
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
