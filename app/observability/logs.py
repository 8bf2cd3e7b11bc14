"""Structured logs: one JSON object a line (structlog over the standard library's logging, so the
lines of uvicorn and of every `logging.getLogger` are JSON too), with the request id of the
request being served. Personal data is scrubbed from every line by the one detector of
`app.pii` (phones, resident ID numbers, bank cards, plates, e-mail addresses), wherever it
appears (messages, exceptions, fields).

`WANGGE_LOG_FORMAT=text` gives the same fields as readable lines (for a developer's terminal)."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from app import pii

_TAGS = {"mobile": "[phone]", "landline": "[phone]", "id_number": "[id-number]"}


_CREDENTIAL = re.compile(r"wg[ps]_[A-Za-z0-9_-]{20,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]{8,}")
"""Personal API tokens, their signed URL form and JWTs (a path or a message may carry one)."""


def scrub(text: str) -> str:
    """`text` with the personal data that the one detector (`app.pii.find`) finds in it replaced
    by a tag: `[phone]`, `[id-number]`, `[bank-card]`, `[plate]`, `[email]`; and credentials by
    `[credential]`."""
    if "wg" in text or "eyJ" in text:
        text = _CREDENTIAL.sub("[credential]", text)
    found = pii.find(text)
    if not found:
        return text
    out, at = [], 0
    for kind, start, end in found:
        out += [text[at:start], _TAGS.get(kind, "[" + kind.replace("_", "-") + "]")]
        at = end
    out.append(text[at:])
    return "".join(out)


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
