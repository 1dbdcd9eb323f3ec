"""The loyalty program behind the Yotpo endpoints: customer upserts, orders, refunds, adjustments.

``LoyaltyProgram`` turns validated requests into changes of the ``customers``, ``orders`` and
``refunds`` collections: it applies the duplicate-order policy, awards points once per
``order_id``, reverses them on cancellation and (proportionally) on refunds, keeps the customer's
points, spend, purchases, history and VIP tier in step, and creates referral codes on demand.
Methods raise ``InvalidRequest`` (status + message) for everything Yotpo refuses.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Callable

from ..core import stamps
from ..core.store import Collection
from . import points, validation, vip
from .customers import CustomerBook, new_customer
from .settings import YotpoSettings
from .validation import InvalidRequest, OrderRequest

_CUSTOMER_TEXT_FIELDS = ("first_name", "last_name", "phone_number", "pos_account_id", "tags")
# fields the simulator keeps on an order; a re-posted body never overwrites them
DERIVED_ORDER_FIELDS = ("points_awarded", "points_credited", "spend_credited_cents", "purchase_credited",
                        "refunded_amount_cents", "awarded_at", "cancelled_at", "loyalty_customer_email",
                        "received_at")


def fmt_time(dt: datetime) -> str:
    return stamps.fmt_iso_millis_z(dt)


def _int(value) -> int:
    return int(vip.number(value))


class LoyaltyProgram:
    def __init__(self, settings: YotpoSettings, book: CustomerBook, orders: Collection, refunds: Collection,
                 tiers: Collection, now: Callable[[], datetime], next_id: Callable[..., int]):
        self.settings = settings
        self.book = book
        self.orders = orders
        self.refunds = refunds
        self.tiers = tiers
        self.now = now
        self.next_id = next_id

    def ordered_tiers(self) -> list[dict]:
        """VIP tiers, lowest first (cached by the collection until a tier changes)."""
        return self.tiers.sorted_by("vip_rank", vip.sort_key)

    # ---- customers -----------------------------------------------------------------------------
    def upsert_customer(self, body: dict) -> dict:
        """POST /customers: create or update by merchant id, else by email (an id with a new
        email is an email change)."""
        email = validation.email(validation.required(body, "email"))
        merchant_id = body.get("id", body.get("customer_id"))
        merchant_id = None if merchant_id in (None, "") else validation.identifier(merchant_id, "id")
        existing = self.book.find({"customer_id": merchant_id}) if merchant_id else None
        previous_email = None
        if existing is not None and existing["email"].lower() != email.lower():
            other = self.book.get(email)
            if other is not None and other is not existing:
                raise InvalidRequest(f"email {email} already belongs to another customer")
            previous_email = existing["email"]
        elif existing is None:
            existing = self.book.get(email)
        now_text = fmt_time(self.now())
        record = dict(existing) if existing else new_customer(email, now_text, self.settings.default_opt_in)
        if previous_email is not None:
            record["email"] = email
        if merchant_id:
            record["third_party_id"] = merchant_id
        self._apply_profile(record, body, now_text, creating=existing is None)
        record["last_seen_at"] = now_text
        vip.refresh(record, self.ordered_tiers(), now_text)
        return self.book.save(record, previous_email)

    def _apply_profile(self, record: dict, body: dict, now_text: str, creating: bool) -> None:
        for field in _CUSTOMER_TEXT_FIELDS:
            if field in body:
                value = body[field]
                if isinstance(value, bool) or (value is not None and not isinstance(value, (str, int))):
                    raise InvalidRequest(f"{field} must be a string, got {value!r}")
                record[field] = None if value is None else str(value)
        if "has_account" in body:
            record["has_store_account"] = bool(validation.boolean(body["has_account"], "has_account"))
        field = "opt_in" if "opt_in" in body else "opted_in" if "opted_in" in body else None
        if field is not None:
            opt_in = validation.boolean(body[field], field)
            if opt_in is None and creating:
                opt_in = self.settings.default_opt_in
            if opt_in is not None:
                self._set_opt_in(record, opt_in, body.get("opted_in_at"), now_text)

    @staticmethod
    def _set_opt_in(record: dict, opt_in: bool, opted_in_at, now_text: str) -> None:
        if opt_in and not record.get("opt_in"):
            when = validation.timestamp(opted_in_at, "opted_in_at")
            record["opted_in_at"] = fmt_time(when) if when else now_text
        elif not opt_in:
            record["opted_in_at"] = None
        record["opt_in"] = opt_in

    def customer_with_referral(self, record: dict) -> dict:
        """The customer with a referral code/link, creating (and storing) one if missing."""
        fmt = self.settings.referral_format
        if record.get(fmt):
            return record
        known = record.get("referral_code") or record.get("referral_link")
        code = known.get("code") if isinstance(known, dict) else None
        if not code:
            letters = re.sub(r"[^A-Za-z]", "", str(record.get("first_name") or ""))[:8].upper() or "FRIEND"
            code = f"{letters}{self.next_id('referral_code', 1000)}"
        updated = dict(record)
        if fmt == "referral_link":
            updated["referral_link"] = {"link": self.settings.referral_link_base + code, "code": code, "expired": False}
        else:
            updated["referral_code"] = {"code": code, "clicks": 0, "email_shares": 0, "facebook_shares": 0,
                                        "twitter_shares": 0, "orders": 0, "amount_cents": 0,
                                        "completed_referral_customers": [], "expired": False}
        return self.book.save(updated)

    # ---- orders ----------------------------------------------------------------------------------
    def record_order(self, body: dict) -> bool:
        """POST /orders. Returns False when the duplicate policy ``ignore`` dropped a repeat."""
        req = validation.parse_order(body)
        existing = self.orders.get(req.order_id)
        now = self.now()
        if existing is not None:
            if self.settings.duplicate_order == "ignore":
                return False
            if self.settings.duplicate_order == "reject":
                raise InvalidRequest(f"Order {req.order_id} already exists", 409)
            order = {**existing, **body, **{k: existing.get(k) for k in DERIVED_ORDER_FIELDS}}
        else:
            customer = self._customer_for_order(req, body)
            order = {**body, "points_awarded": 0, "refunded_amount_cents": 0, "awarded_at": None,
                     "cancelled_at": None, "loyalty_customer_email": customer["email"],
                     "received_at": fmt_time(now)}
            points.mark_credited(order, points.NOTHING)
        order["order_id"] = req.order_id
        order["currency_code"] = req.currency_code or order.get("currency_code") or self.settings.default_currency
        order["updated_at"] = fmt_time(now)
        action = self._advance_status(order, req, now)
        self._settle(order, action, req.created_at or now)
        self.orders.put(order)
        return True

    def _advance_status(self, order: dict, req: OrderRequest, now: datetime) -> str:
        """Mark the award or the cancellation the order's status calls for; name the change."""
        status = order.get("status")
        status_key = str(status).lower() if status is not None else None
        if status_key in self.settings.cancel_statuses:
            if not order.get("cancelled_at"):
                order["cancelled_at"] = fmt_time(now)
            return "Order cancelled"
        if order.get("awarded_at") or order.get("cancelled_at"):
            return "Order updated"
        if status_key is None or status_key in self.settings.award_statuses:
            customer = self.book.get(order["loyalty_customer_email"])
            order["points_awarded"] = points.purchase_points(points.order_total(order),
                                                             self.settings.points_per_currency_unit,
                                                             self._multiplier(customer))
            order["awarded_at"] = fmt_time(now)
            return "Made a purchase"
        return "Order updated"

    def _multiplier(self, customer: dict | None) -> float:
        if not self.settings.apply_tier_multiplier or customer is None:
            return 1.0
        tier, _ = vip.tier_for(customer, self.ordered_tiers())
        factor = vip.number((tier or {}).get("points_multiplier"))
        return factor if factor > 0 else 1.0

    def _customer_for_order(self, req: OrderRequest, body: dict) -> dict:
        """The order's loyalty customer, created when missing (Yotpo creates them from orders)."""
        ids = {"customer_email": req.customer_email}
        if req.customer_id:
            ids["customer_id"] = req.customer_id
        customer = self.book.find(ids)
        if customer is not None:
            if req.customer_id and not customer.get("third_party_id"):
                customer = self.book.save({**customer, "third_party_id": req.customer_id})
            return customer
        now_text = fmt_time(self.now())
        record = new_customer(req.customer_email, now_text, self.settings.default_opt_in)
        record["third_party_id"] = req.customer_id
        address = body.get("billing_address") if isinstance(body.get("billing_address"), dict) else {}
        record["first_name"], record["last_name"] = address.get("first_name"), address.get("last_name")
        extra = body.get("customer") or {}
        if "has_account" in extra:
            record["has_store_account"] = bool(validation.boolean(extra["has_account"], "customer.has_account"))
        if extra.get("opt_in") is not None:
            self._set_opt_in(record, bool(validation.boolean(extra["opt_in"], "customer.opt_in")),
                             extra.get("opted_in_at"), now_text)
        vip.refresh(record, self.ordered_tiers(), now_text)
        return self.book.save(record)

    def _settle(self, order: dict, action: str, purchase_at: datetime | None = None) -> int:
        """Move the order's customer by the change in the order's contribution; the points delta."""
        target = points.contribution(order)
        delta = target.minus(points.credited(order))
        points.mark_credited(order, target)
        if delta.is_zero():
            return 0
        customer = self.book.get(order["loyalty_customer_email"])
        if customer is None:  # the customer was removed behind the program's back
            return delta.points
        record = dict(customer)
        record["points_balance"] = _int(record.get("points_balance")) + delta.points
        record["points_earned"] = _int(record.get("points_earned")) + delta.points
        record["total_spend_cents"] = _int(record.get("total_spend_cents")) + delta.spend_cents
        record["total_purchases"] = _int(record.get("total_purchases")) + delta.purchases
        if delta.purchases > 0 and purchase_at is not None:
            record["last_purchase_at"] = fmt_time(purchase_at)
        self._touch(record, action, delta.points)
        return delta.points

    def _touch(self, record: dict, action: str, points_delta: int, visible: bool = True) -> dict:
        """Add a history item (when points moved), refresh the VIP tier, store the customer."""
        now = self.now()
        now_text = fmt_time(now)
        if points_delta and visible:
            item = {"created_at": now_text, "date": now.strftime("%Y-%m-%d"), "action": action,
                    "points": points_delta, "status": "Approved"}
            record["history_items"] = [*(record.get("history_items") or []), item]
        record["last_seen_at"] = now_text
        vip.refresh(record, self.ordered_tiers(), now_text)
        return self.book.save(record)

    # ---- refunds ---------------------------------------------------------------------------------
    def record_refund(self, body: dict) -> dict:
        """POST /refunds. A repeated refund ``id`` returns the stored refund and changes nothing."""
        refund_id = validation.refund_id(body)
        if refund_id is not None and self.refunds.get(refund_id) is not None:
            return self.refunds.get(refund_id)
        req = validation.parse_refund(body, self.settings.multi_currency)
        order = self.orders.get(req.order_id)
        if order is None:
            raise InvalidRequest(f"Order {req.order_id} not found", 404)
        order_currency = order.get("currency_code")
        if req.currency is not None and req.currency != order_currency:
            raise InvalidRequest(f"currency {req.currency} does not match the order's currency {order_currency}")
        total, refunded = points.order_total(order), int(order.get("refunded_amount_cents") or 0)
        if refunded + req.amount_cents > total:
            raise InvalidRequest(f"refund of {req.amount_cents} cents exceeds the refundable amount "
                                 f"{total - refunded} cents of order {req.order_id}")
        now_text = fmt_time(self.now())
        order = {**order, "refunded_amount_cents": refunded + req.amount_cents, "updated_at": now_text}
        delta = self._settle(order, "Refund")
        self.orders.put(order)
        refund_id = refund_id or f"yotpo-refund-{self.next_id('refund')}"
        refund = {**body, "id": refund_id, "order_id": req.order_id, "points_reversed": -delta,
                  "received_at": now_text}
        return self.refunds.put(refund)

    # ---- points ----------------------------------------------------------------------------------
    def adjust_points(self, body: dict) -> dict:
        """POST /points/adjust: a signed change of the balance (and optionally lifetime points)."""
        adjustment = validation.parse_adjustment(body)
        customer = self.book.find(validation.customer_lookup(body))
        if customer is None:
            raise InvalidRequest("Customer not found", 404)
        balance = _int(customer.get("points_balance"))
        if balance + adjustment.amount < 0:
            raise InvalidRequest(f"Insufficient points: balance {balance}, adjustment {adjustment.amount}")
        record = dict(customer)
        record["points_balance"] = balance + adjustment.amount
        if adjustment.apply_to_points_earned:
            record["points_earned"] = _int(record.get("points_earned")) + adjustment.amount
        return self._touch(record, adjustment.history_title or "Points adjustment", adjustment.amount,
                           adjustment.visible_to_customer)
