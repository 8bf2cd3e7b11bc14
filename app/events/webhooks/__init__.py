"""Webhooks for departments' own systems: subscriptions (`router`, `service`, `schemas`), the
event types one can subscribe to (`catalogue`), the addresses one may not (`targets`), and the
signed at-least-once delivery from the outbox (`delivery`)."""

from app.events.webhooks.delivery import (
    MAX_ATTEMPTS,
    backoff_seconds,
    body_of,
    deliver_due,
    new_secret,
    run_forever,
    sign,
    verify,
)

__all__ = [
    "MAX_ATTEMPTS",
    "backoff_seconds",
    "body_of",
    "deliver_due",
    "new_secret",
    "run_forever",
    "sign",
    "verify",
]
