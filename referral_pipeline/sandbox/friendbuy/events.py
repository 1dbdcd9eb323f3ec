"""The events Friendbuy received through MAPI, and the lookups the write endpoints need.

``events`` (contracts §4) maps each event type to the accepted bodies, each plus ``eventId`` and
``createdOn``, in arrival order. Indexes (rebuilt on restore) answer: the first purchase with an
``orderId``, the custom event with an (``eventType``, ``deduplicationId``), and whether a customer
(by ``customerId`` or email) has purchased before.
"""
from __future__ import annotations

from typing import Any

EVENT_TYPES = ("purchase", "account-sign-up", "custom")


class EventLog:
    def __init__(self) -> None:
        self.events: dict[str, list[dict]] = {t: [] for t in EVENT_TYPES}
        self._purchase_by_order: dict[str, dict] = {}
        self._custom_by_dedup: dict[tuple[str, str], dict] = {}
        self._buyers: set[tuple[str, str]] = set()

    def append(self, event_type: str, event: dict) -> dict:
        self.events[event_type].append(event)
        self._index(event_type, event)
        return event

    def _index(self, event_type: str, event: dict) -> None:
        if event_type == "purchase":
            self._purchase_by_order.setdefault(str(event.get("orderId")), event)
            self._buyers.update(_buyer_keys(event.get("customerId"), event.get("email")))
        elif event_type == "custom" and event.get("deduplicationId"):
            self._custom_by_dedup.setdefault((str(event.get("eventType")), str(event["deduplicationId"])), event)

    def first_purchase(self, order_id: str) -> dict | None:
        return self._purchase_by_order.get(str(order_id))

    def custom_duplicate(self, event_type: str, deduplication_id: str | None) -> dict | None:
        if not deduplication_id:
            return None
        return self._custom_by_dedup.get((str(event_type), str(deduplication_id)))

    def has_purchased(self, customer_id: Any, email: Any) -> bool:
        return any(k in self._buyers for k in _buyer_keys(customer_id, email))

    def to_state(self) -> dict[str, list[dict]]:
        return {t: list(self.events[t]) for t in EVENT_TYPES}

    @classmethod
    def from_state(cls, state: Any) -> "EventLog":
        log = cls()
        if isinstance(state, dict):
            for event_type in EVENT_TYPES:
                for event in state.get(event_type) or []:
                    if isinstance(event, dict):
                        log.append(event_type, event)
        return log


def _buyer_keys(customer_id: Any, email: Any) -> list[tuple[str, str]]:
    keys = []
    if customer_id not in (None, ""):
        keys.append(("id", str(customer_id)))
    if email not in (None, ""):
        keys.append(("email", str(email).casefold()))
    return keys
