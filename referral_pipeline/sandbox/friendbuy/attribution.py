"""What Friendbuy derives from a tracked event: attribution to an advocate and export rows.

Attribution follows Friendbuy's precedence (reference §6): ``couponCode`` (a code Friendbuy
distributed as a friend incentive, matched case-insensitively), then ``attributionId`` (a click or
share row carrying that ``attributionId``), then ``referralCode`` (a share's code). The first one
that resolves wins; an event that resolves none is stored but appears in no export.

An attributed purchase becomes a ``purchases`` row; an attributed sign-up an ``account-sign-ups``
row; an attributed purchase by a new customer may also become a ``distributed-advocate-rewards``
row (``trigger: "purchase"``), at most once per (campaign, friend), never for a self-referral.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.store import Collection

ADVOCATE_FIELDS = ("advocateCustomerId", "advocateEmail", "advocateName")
CAMPAIGN_FIELDS = ("campaignId", "campaignName")


@dataclass(frozen=True)
class Attribution:
    """An event resolved to the export row (incentive, click or share) that credits an advocate."""

    method: str  # "couponCode" | "attributionId" | "referralCode"
    source: dict

    def get(self, name: str) -> Any:
        return self.source.get(name)

    def is_self_referral(self, customer_id: Any, email: Any) -> bool:
        advocate_id, advocate_email = self.get("advocateCustomerId"), self.get("advocateEmail")
        if customer_id and advocate_id and str(customer_id) == str(advocate_id):
            return True
        return bool(email and advocate_email and str(email).casefold() == str(advocate_email).casefold())


def _norm(value: Any, casefold: bool) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    return text.casefold() if casefold else text


class AttributionIndex:
    """Lookups from codes and ids to export rows, built lazily per (collection, field) and dropped
    when that collection changes. The earliest row (by ``createdOn``) wins on duplicates."""

    # (event field, [(collection, row field, case-insensitive)])
    RULES = (
        ("couponCode", [("distributed-friend-incentives", "couponCode", True)]),
        ("attributionId", [("clicks", "attributionId", False), ("shares", "attributionId", False)]),
        ("referralCode", [("shares", "referralCode", True), ("clicks", "referralCode", True)]),
    )

    def __init__(self, collections: dict[str, Collection]):
        self.collections = collections
        self._maps: dict[tuple[str, str], dict[str, dict]] = {}

    def touched(self, collection: str) -> None:
        for key in [k for k in self._maps if k[0] == collection]:
            del self._maps[key]

    def resolve(self, event: dict) -> Attribution | None:
        for event_field, targets in self.RULES:
            for collection, row_field, casefold in targets:
                value = _norm(event.get(event_field), casefold)
                if value is None:
                    continue
                row = self._lookup(collection, row_field, casefold).get(value)
                if row is not None:
                    return Attribution(event_field, row)
        return None

    def _lookup(self, collection: str, row_field: str, casefold: bool) -> dict[str, dict]:
        key = (collection, row_field)
        found = self._maps.get(key)
        if found is None:
            found = {}
            for row in self.collections[collection].iter_by_stamp():
                value = _norm(row.get(row_field), casefold)
                if value is not None and value not in found:
                    found[value] = row
            self._maps[key] = found
        return found


class RewardedFriends:
    """(campaign, friend) pairs that already have a distributed advocate reward."""

    def __init__(self, rewards: Collection):
        self.rewards = rewards
        self._seen: set[tuple] | None = None

    def touched(self) -> None:
        self._seen = None

    def contains(self, campaign_id: Any, customer_id: Any, email: Any) -> bool:
        seen = self._all()
        return any(k in seen for k in _friend_keys(campaign_id, customer_id, email))

    def add(self, row: dict) -> None:
        self._all().update(_friend_keys(row.get("campaignId"), row.get("friendCustomerId"), row.get("friendEmail")))

    def _all(self) -> set[tuple]:
        if self._seen is None:
            self._seen = set()
            for row in self.rewards.values():
                self._seen.update(_friend_keys(row.get("campaignId"), row.get("friendCustomerId"),
                                               row.get("friendEmail")))
        return self._seen


def _friend_keys(campaign_id: Any, customer_id: Any, email: Any) -> list[tuple]:
    campaign = str(campaign_id or "")
    keys = []
    if customer_id not in (None, ""):
        keys.append((campaign, "id", str(customer_id)))
    if email not in (None, ""):
        keys.append((campaign, "email", str(email).casefold()))
    return keys


def full_name(event: dict) -> str | None:
    name = " ".join(str(event[k]).strip() for k in ("firstName", "lastName") if event.get(k))
    return name or None


def _compact(row: dict) -> dict:
    return {k: v for k, v in row.items() if v is not None}


def _advocate_part(attribution: Attribution) -> dict:
    return {**{k: attribution.get(k) for k in ADVOCATE_FIELDS},
            "referralCode": attribution.get("referralCode"),
            **{k: attribution.get(k) for k in CAMPAIGN_FIELDS}}


def purchase_row(event: dict, attribution: Attribution, new_customer: bool) -> dict:
    """A ``/v1/analytics/purchases`` row (reference §7.2 fields plus ``orderId``)."""
    products = [_compact({k: p.get(k) for k in ("sku", "name", "quantity", "price")})
                for p in event.get("products") or []]
    return _compact({
        "customerId": event.get("customerId"), "email": event.get("email"), "name": full_name(event),
        **_advocate_part(attribution), "createdOn": event["createdOn"], "ipAddress": event.get("ipAddress"),
        "newCustomer": new_customer, "amount": event.get("amount"), "couponCode": event.get("couponCode"),
        "products": products, "orderId": event.get("orderId"),
    })


def sign_up_row(event: dict, attribution: Attribution, new_customer: bool) -> dict:
    """A ``/v1/analytics/account-sign-ups`` row."""
    return _compact({
        "customerId": event.get("customerId"), "email": event.get("email"), "name": full_name(event),
        **_advocate_part(attribution), "createdOn": event["createdOn"], "userAgent": event.get("userAgent"),
        "ipAddress": event.get("ipAddress"), "newCustomer": new_customer, "channel": attribution.get("channel"),
    })


def advocate_reward_row(event: dict, attribution: Attribution, reward_type: str, amount: float,
                        coupon_code: str | None) -> dict:
    """A ``/v1/analytics/distributed-advocate-rewards`` row for a rewarded purchase."""
    return _compact({
        "createdOn": event["createdOn"], "rewardType": reward_type, "rewardAmount": amount,
        "couponCode": coupon_code, "trigger": "purchase",
        "advocateEmail": attribution.get("advocateEmail"), "advocateName": attribution.get("advocateName"),
        "advocateCustomerId": attribution.get("advocateCustomerId"),
        "referralCode": attribution.get("referralCode"), "channel": attribution.get("channel"),
        "friendEmail": event.get("email"), "friendName": full_name(event), "friendCustomerId": event.get("customerId"),
        **{k: attribution.get(k) for k in CAMPAIGN_FIELDS},
    })
