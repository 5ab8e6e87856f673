"""RIS integration services. ``webhook_event_publish`` is the one entry point other apps call."""

from __future__ import annotations

from typing import Any


def webhook_event_publish(*, event: Any) -> None:
    """Called for every case event in the transaction that records it; queues webhook deliveries
    for the integrations subscribed to that event kind (implemented by the API app)."""
    return None
