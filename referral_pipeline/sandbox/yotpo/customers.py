"""Yotpo loyalty customers: the records (GET /customers shape, keyed by email) and their lookups.

``CustomerBook`` is the only writer of the ``customers`` collection. Besides the email key it keeps
lookups by merchant id (``third_party_id``, older ``thirty_party_id``), phone number, POS account id
and lower-cased email, the ``last_seen_at`` order that ``GET /customers/all`` pages through, and the
email changes made by ``POST /customers`` (so orders recorded under an old email still find their
customer). The indexes are built on first use after a load and maintained on every write.
"""
from __future__ import annotations

import bisect
from ..core import stamps
from ..core.store import Collection

HIDDEN_UNLESS_ASKED = ("referral_code", "referral_link", "history_items")
_LOOKUPS = {"customer_id": ("third_party_id", "thirty_party_id"), "phone_number": ("phone_number",),
            "pos_account_id": ("pos_account_id",)}


def new_customer(email: str, now_text: str, opt_in: bool) -> dict:
    """A customer as Yotpo creates it: no points, no purchases, seen now."""
    return {
        "email": email, "first_name": None, "last_name": None, "phone_number": None,
        "third_party_id": None, "pos_account_id": None, "has_store_account": False,
        "points_balance": 0, "points_earned": 0, "points_expire_at": None,
        "total_spend_cents": 0, "total_purchases": 0, "perks_redeemed": 0,
        "last_purchase_at": None, "last_seen_at": now_text,
        "opt_in": opt_in, "opted_in_at": now_text if opt_in else None,
        "vip_tier_name": None, "vip_tier_entry_date": None, "vip_tier_expiration": None,
        "vip_tier_upgrade_requirements": None,
    }


def public_view(record: dict, with_referral_code: bool = False, with_history: bool = False) -> dict:
    """The customer as GET /customers returns it: referral data and history only when asked."""
    out = {k: v for k, v in record.items() if k not in HIDDEN_UNLESS_ASKED}
    if with_referral_code:
        for name in ("referral_code", "referral_link"):
            if name in record:
                out[name] = record[name]
    if with_history:
        out["history_items"] = list(record.get("history_items") or [])
    return out


def _seen_micros(record: dict) -> int:
    raw = record.get("last_seen_at")
    try:
        return stamps.to_micros(raw) if raw not in (None, "") else -1
    except (ValueError, TypeError, OverflowError):
        return -1


class CustomerBook:
    def __init__(self, collection: Collection, email_changes: dict[str, str] | None = None):
        self.coll = collection
        self.email_changes: dict[str, str] = dict(email_changes or {})  # old email -> new email
        self._by: dict[str, dict[str, str]] | None = None  # lookup field -> value -> email key
        self._seen: list[tuple[int, str]] = []  # sorted (last_seen micros, email)
        self._seen_of: dict[str, tuple[int, str]] = {}

    def __len__(self) -> int:
        return len(self.coll)

    # ---- indexes -------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget the indexes (after the collection was replaced wholesale)."""
        self._by = None

    def _ensure(self) -> dict[str, dict[str, str]]:
        if self._by is None:
            self._by = {name: {} for name in (*_LOOKUPS, "email_lower")}
            self._seen_of = {}
            for key, record in self.coll.records.items():
                self._add(key, record)
            self._seen = sorted(self._seen_of.values())
        return self._by

    def _add(self, key: str, record: dict, keep_sorted: bool = False) -> None:
        by = self._by
        for lookup, fields in _LOOKUPS.items():
            for field in fields:
                value = record.get(field)
                if value not in (None, ""):
                    by[lookup].setdefault(str(value), key)
        by["email_lower"].setdefault(str(key).lower(), key)
        entry = (_seen_micros(record), key)
        self._seen_of[key] = entry
        if keep_sorted:
            bisect.insort(self._seen, entry)

    def _remove(self, key: str, record: dict) -> None:
        by = self._by
        for lookup, fields in _LOOKUPS.items():
            for field in fields:
                value = record.get(field)
                if value not in (None, "") and by[lookup].get(str(value)) == key:
                    del by[lookup][str(value)]
        if by["email_lower"].get(str(key).lower()) == key:
            del by["email_lower"][str(key).lower()]
        entry = self._seen_of.pop(key, None)
        if entry is not None:
            i = bisect.bisect_left(self._seen, entry)
            if i < len(self._seen) and self._seen[i] == entry:
                del self._seen[i]

    # ---- reads ----------------------------------------------------------------------------------
    def get(self, email: str | None) -> dict | None:
        """The customer under ``email`` (exact, then case-insensitive, then after email changes)."""
        if not email:
            return None
        seen = set()
        while email and email not in seen:
            record = self.coll.get(email)
            if record is not None:
                return record
            key = self._ensure()["email_lower"].get(email.lower())
            if key is not None:
                return self.coll.get(key)
            seen.add(email)
            email = self.email_changes.get(email)
        return None

    def find(self, ids: dict[str, str]) -> dict | None:
        """By ``customer_id`` (the merchant's id) first, then email, phone, POS account id."""
        by = self._ensure()
        if ids.get("customer_id"):
            key = by["customer_id"].get(ids["customer_id"])
            if key is not None:
                return self.coll.get(key)
        if ids.get("customer_email"):
            record = self.get(ids["customer_email"])
            if record is not None:
                return record
        for lookup in ("phone_number", "pos_account_id"):
            key = by[lookup].get(ids[lookup]) if ids.get(lookup) else None
            if key is not None:
                return self.coll.get(key)
        return None

    def page_by_last_seen(self, since_micros: int | None, page: int, per_page: int) -> tuple[list[dict], int]:
        """One page of customers in (last_seen_at, email) order, and the number of matches."""
        self._ensure()
        lo = 0 if since_micros is None else bisect.bisect_left(self._seen, (since_micros, ""))
        total = len(self._seen) - lo
        start = lo + (page - 1) * per_page
        keys = [key for _, key in self._seen[start:start + per_page]]
        return [self.coll.records[key] for key in keys], total

    # ---- writes ---------------------------------------------------------------------------------
    def save(self, record: dict, previous_email: str | None = None) -> dict:
        """Store ``record`` (a new dict, never the stored one mutated in place), replacing the
        record stored under ``previous_email`` (an email change) or under its own email."""
        self._ensure()
        key = record["email"]
        old_key = previous_email if previous_email is not None else key
        old = self.coll.get(old_key)
        if old is not None:
            self._remove(old_key, old)
        if old_key != key and old is not None:
            self.coll.delete(old_key)
            self.email_changes[old_key] = key
            self.email_changes.pop(key, None)
        self.coll.put(record)
        self._add(key, record, keep_sorted=True)
        return record
