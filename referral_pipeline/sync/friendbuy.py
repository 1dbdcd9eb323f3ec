"""Friendbuy MAPI destination: customers, purchases (once per order) and refund/cancellation custom
events pushed through the sync engine (docs/sync.md, "Friendbuy").

Instances: markets with a ``friendbuy`` block sharing an env prefix share one Friendbuy account
(destination ``friendbuy`` for prefix ``FRIENDBUY``, else ``friendbuy_<prefix>``); each record carries
its own market's ``campaign_id``. Referral sign-ups are not pushed: no commerce source knows one (the
only sign-ups we have are Friendbuy's own export, which must not be echoed back).

Purchases and crashes: Friendbuy documents no dedupe of a repeated ``orderId`` (reference §8) and
the simulator's default policy counts it again. Unless the account is known to ignore/reject
repeats (``order_id_dedup``), a purchase send with an unknown outcome is never repeated blindly:
the purchases export (attributed purchases carry ``orderId``) may confirm it; otherwise it is held
``in_flight`` for an operator.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from ..config.programs import Programs
from ..http.client import ApiError
from ..transform.runtime import load_sql
from .engine import SQL_PACKAGE, DestinationResult, EntitySpec, SendOutcome, SyncSettings, ensure_sync_schema, run_sync
from .ownership import FieldOwnership, load_ownership

PROPERTY_CHARS = 128                      # additionalProperties values longer than this are dropped by MAPI
RECONCILE_FROM = "2000-01-01T00:00:00Z"   # purchases export window start for reconciliation (filtered by buyer)
IN_DOUBT_STATUSES = (500, 502, 504)       # a non-idempotent purchase answered with these may have been recorded



def _prop():
    """An optional value sent inside ``additionalProperties`` (MAPI drops values over 128 chars)."""
    return Field(default=None, max_length=PROPERTY_CHARS)


def _props(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _compact(body: dict) -> dict:
    return {k: v for k, v in body.items() if v is not None and v != {}}


# ---- payload models (validated before any request; stored snake_case, sent as MAPI camelCase) -------
class FriendbuyCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1)
    email: str = Field(min_length=3, max_length=254)
    first_name: str | None = None
    last_name: str | None = None
    sf_contact_id: str | None = _prop()
    sf_account_id: str | None = _prop()
    market: str | None = _prop()

    def to_mapi(self) -> dict:
        return _compact({"customerId": self.customer_id, "email": self.email, "firstName": self.first_name,
                         "lastName": self.last_name,
                         "additionalProperties": _props(sfContactId=self.sf_contact_id,
                                                        sfAccountId=self.sf_account_id, market=self.market)})


class FriendbuyProduct(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1)
    name: str | None = None
    quantity: int = Field(ge=1)
    price: float = Field(ge=0)


class FriendbuyPurchase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    amount: float = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    email: str | None = Field(default=None, min_length=3, max_length=254)
    first_name: str | None = None
    last_name: str | None = None
    is_new_customer: bool | None = None
    coupon_code: str | None = None
    attribution_id: str | None = None
    referral_code: str | None = None
    products: list[FriendbuyProduct] | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    market: str | None = _prop()
    campaign_id: str | None = _prop()

    def to_mapi(self) -> dict:
        products = [_compact(p.model_dump()) for p in self.products] if self.products else None
        return _compact({"orderId": self.order_id, "customerId": self.customer_id, "amount": self.amount,
                         "currency": self.currency, "email": self.email, "firstName": self.first_name,
                         "lastName": self.last_name, "isNewCustomer": self.is_new_customer,
                         "couponCode": self.coupon_code, "attributionId": self.attribution_id,
                         "referralCode": self.referral_code, "products": products, "ipAddress": self.ip_address,
                         "userAgent": self.user_agent,
                         "additionalProperties": _props(market=self.market, campaignId=self.campaign_id)})


class FriendbuyCustomEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deduplication_id: str = Field(min_length=1)
    event_type: str = Field(pattern=r"^(refund|cancellation)$")
    email: str = Field(min_length=3, max_length=254)
    customer_id: str | None = None
    order_id: str | None = _prop()
    amount: str | None = _prop()
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    market: str | None = _prop()
    campaign_id: str | None = _prop()

    def to_mapi(self) -> dict:
        return _compact({"eventType": self.event_type, "deduplicationId": self.deduplication_id, "email": self.email,
                         "customerId": self.customer_id,
                         "additionalProperties": _props(orderId=self.order_id, amount=self.amount,
                                                        currency=self.currency, market=self.market,
                                                        campaignId=self.campaign_id)})


# ---- send / classify / reconcile --------------------------------------------------------------------
def _send_customer(client, payload: dict) -> SendOutcome:
    client.track_customer(FriendbuyCustomer.model_validate(payload).to_mapi())
    return SendOutcome("ok", 200, remote_id=payload["customer_id"])


def _send_purchase(client, payload: dict, *, idempotent: bool) -> SendOutcome:
    body = client.track_purchase(FriendbuyPurchase.model_validate(payload).to_mapi(), idempotent=idempotent)
    return SendOutcome("ok", 201, remote_id=body.get("eventId") or payload["order_id"])


def _send_custom_event(client, payload: dict) -> SendOutcome:
    body = client.track_custom_event(FriendbuyCustomEvent.model_validate(payload).to_mapi())
    return SendOutcome("ok", 201, remote_id=body.get("eventId") or payload["deduplication_id"])


def _classify_purchase(exc: ApiError, *, order_id_dedup: bool) -> SendOutcome | None:
    """409 "already been tracked" (an account that rejects repeats): Friendbuy has the purchase.
    Without known dedupe, a 500/502/504 to a purchase may have been recorded: in doubt, not failed."""
    if exc.status == 409 and "already" in (exc.body or ""):
        return SendOutcome("ok", 409)
    if not order_id_dedup and exc.status in IN_DOUBT_STATUSES:
        return SendOutcome("in_doubt", exc.status, f"outcome unknown: {exc.body or exc}")
    return None


def _reconcile_purchase(client, payload: dict) -> bool | None:
    """``True`` when the purchases export shows our ``orderId`` (only attributed purchases appear
    there); otherwise we cannot tell (``None``: held, not re-sent, when repeats double count)."""
    if not any(payload.get(k) for k in ("coupon_code", "referral_code", "attribution_id")):
        return None
    to_date = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    row = client.find_referral_purchase(payload["order_id"], payload["customer_id"], from_date=RECONCILE_FROM,
                                        to_date=to_date)
    return True if row is not None else None


@dataclass(frozen=True)
class FriendbuyInstance:
    destination: str
    env_prefix: str
    markets: tuple[str, ...]
    campaigns: tuple[tuple[str, str], ...]   # (market_id, campaign_id)


def friendbuy_instances(programs: Programs) -> list[FriendbuyInstance]:
    by_prefix: dict[str, list[tuple[str, str]]] = {}
    for m in programs.markets:
        if m.friendbuy:
            by_prefix.setdefault(m.friendbuy.env_prefix, []).append((m.id, m.friendbuy.campaign_id))
    return [FriendbuyInstance("friendbuy" if p == "FRIENDBUY" else f"friendbuy_{p.lower()}", p,
                              tuple(m for m, _ in pairs), tuple(pairs))
            for p, pairs in sorted(by_prefix.items())]


def friendbuy_specs(destination: str, ownership: FieldOwnership | None = None,
                    order_id_dedup: bool = False) -> list[EntitySpec]:
    """Customers, then purchases (once per order), then refund/cancellation events (after their
    purchase was accepted). ``order_id_dedup``: the account ignores or rejects a repeated ``orderId``
    (confirmed with Friendbuy), so purchases whose outcome is unknown may be re-sent."""
    own = ownership or load_ownership()
    sql = lambda name: load_sql(SQL_PACKAGE, name)  # noqa: E731
    return [
        EntitySpec(destination, "customers", own.for_object("friendbuy.customers"), sql("friendbuy_customers.sql"),
                   FriendbuyCustomer, _send_customer),
        EntitySpec(destination, "purchases", own.for_object("friendbuy.purchases"), sql("friendbuy_purchases.sql"),
                   FriendbuyPurchase, partial(_send_purchase, idempotent=order_id_dedup),
                   change_fields=("order_id",), enrich_sql=sql("friendbuy_purchase_details.sql"),
                   classify=partial(_classify_purchase, order_id_dedup=order_id_dedup),
                   reconcile=None if order_id_dedup else _reconcile_purchase, resend_in_doubt=order_id_dedup),
        EntitySpec(destination, "custom_events", own.for_object("friendbuy.custom_events"),
                   sql("friendbuy_custom_events.sql"), FriendbuyCustomEvent, _send_custom_event,
                   change_fields=("deduplication_id", "event_type")),
    ]


def _register_campaigns(con, instance: FriendbuyInstance) -> None:
    """TEMP ``friendbuy_campaigns`` (market_id, campaign_id) of the instance, read by the mapping SQL."""
    con.execute("CREATE OR REPLACE TEMP TABLE friendbuy_campaigns AS "
                "SELECT unnest(CAST($m AS VARCHAR[])) AS market_id, unnest(CAST($c AS VARCHAR[])) AS campaign_id",
                {"m": [m for m, _ in instance.campaigns], "c": [c for _, c in instance.campaigns]})


def run_friendbuy_sync(con, client, instance: FriendbuyInstance, *, run_id: str, settings: SyncSettings | None = None,
                       now: datetime | None = None, ownership: FieldOwnership | None = None,
                       after_send: Callable[[str, dict], None] | None = None,
                       order_id_dedup: bool = False) -> DestinationResult:
    ensure_sync_schema(con)
    _register_campaigns(con, instance)
    out = DestinationResult(instance.destination)
    for spec in friendbuy_specs(instance.destination, ownership, order_id_dedup):
        out.entities[spec.entity] = run_sync(con, spec, client, run_id=run_id, markets=list(instance.markets),
                                             settings=settings, now=now, after_send=after_send)
    return out
