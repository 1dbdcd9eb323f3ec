"""Yotpo Loyalty destination: customers, orders and refunds pushed through the sync engine, then
points balance, VIP tier and referral code pulled back per changed customer (docs/sync.md).

Only markets with a ``yotpo`` block take part; markets sharing an env prefix share one Yotpo
instance (destination name ``yotpo`` for prefix ``YOTPO``, else ``yotpo_<prefix>``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from ..config.programs import Programs
from ..http.client import ApiError
from ..transform.runtime import load_sql, run_sql, transaction
from .engine import (SQL_PACKAGE, DestinationResult, EntitySpec, SendOutcome, SyncSettings, ensure_sync_schema,
                     run_sync)
from .ownership import FieldOwnership, load_ownership


# ---- payload models (what Yotpo accepts; validated before any request) ------------------------------
class YotpoCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    email: str = Field(min_length=3, max_length=254)
    first_name: str | None = None
    last_name: str | None = None
    opted_in: bool | None = None
    phone_number: str | None = None


class YotpoOrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str | None = None
    quantity: int = Field(ge=1)
    price_cents: int = Field(ge=0)


class YotpoOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1)
    customer_email: str = Field(min_length=3)
    customer_id: str | None = None
    status: str
    total_amount_cents: int = Field(ge=0)
    currency_code: str = Field(pattern=r"^[A-Z]{3}$")
    created_at: str | None = None
    discount_amount_cents: int | None = Field(default=None, ge=0)
    shipping_amount_cents: int | None = Field(default=None, ge=0)
    tax_amount_cents: int | None = Field(default=None, ge=0)
    coupon_code: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    items: list[YotpoOrderItem] | None = None


class YotpoRefund(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    total_amount_cents: int = Field(ge=1)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


# ---- send / classify / reconcile --------------------------------------------------------------------
def _send_customer(client, payload: dict) -> SendOutcome:
    body = client.upsert_customer(payload)
    remote = body.get("email") if isinstance(body, dict) else None
    return SendOutcome("ok", 200, remote_id=remote)


def _send_order(client, payload: dict) -> SendOutcome:
    client.create_order(payload)
    return SendOutcome("ok", 200, remote_id=payload["order_id"])


def _send_refund(client, payload: dict) -> SendOutcome:
    client.create_refund(payload)
    return SendOutcome("ok", 200, remote_id=payload["id"])


def _order_conflict(exc: ApiError) -> SendOutcome | None:
    """409 "Order <id> already exists" (duplicate policy ``reject``): Yotpo has the order, the effect
    happened; record it as accepted."""
    if exc.status == 409 and "already exists" in (exc.body or ""):
        return SendOutcome("ok", 409, remote_id=None)
    return None


CUSTOMER_FIELDS_COMPARED = {"email": "email", "first_name": "first_name", "last_name": "last_name",
                            "opted_in": "opt_in"}


def _reconcile_customer(client, payload: dict) -> bool | None:
    """The upsert took effect when Yotpo shows the customer with our id and the owned fields we sent."""
    remote = client.get_customer(email=payload.get("email"))
    if remote is None:
        return False
    for ours, theirs in CUSTOMER_FIELDS_COMPARED.items():
        if ours in payload and remote.get(theirs) != payload[ours]:
            return False
    return (remote.get("third_party_id") or remote.get("thirty_party_id")) == payload.get("id")


def _reconcile_order(client, payload: dict) -> bool | None:
    """GET /customers cannot name an order; a missing customer proves the order was not recorded (an
    order creates its customer). Otherwise we cannot tell: re-send by natural key (order_id), which
    Yotpo treats as an update that awards points at most once."""
    remote = client.get_customer(email=payload.get("customer_email"))
    return False if remote is None else None


def _reconcile_refund(client, payload: dict) -> bool | None:
    """Yotpo has no refund read API; a repeated refund id is a no-op there, so re-send."""
    return None


@dataclass(frozen=True)
class YotpoInstance:
    destination: str
    env_prefix: str
    markets: tuple[str, ...]


def yotpo_instances(programs: Programs) -> list[YotpoInstance]:
    by_prefix: dict[str, list[str]] = {}
    for m in programs.markets:
        if m.yotpo:
            by_prefix.setdefault(m.yotpo.env_prefix, []).append(m.id)
    return [YotpoInstance("yotpo" if p == "YOTPO" else f"yotpo_{p.lower()}", p, tuple(ms))
            for p, ms in sorted(by_prefix.items())]


def yotpo_specs(destination: str, ownership: FieldOwnership | None = None) -> list[EntitySpec]:
    """Customers, then orders (an order needs no customer first: Yotpo creates it), then refunds
    (after their order was accepted)."""
    own = ownership or load_ownership()
    sql = lambda name: load_sql(SQL_PACKAGE, name)  # noqa: E731
    return [
        EntitySpec(destination, "customers", own.for_object("yotpo.customers"), sql("yotpo_customers.sql"),
                   YotpoCustomer, _send_customer, reconcile=_reconcile_customer),
        EntitySpec(destination, "orders", own.for_object("yotpo.orders"), sql("yotpo_orders.sql"), YotpoOrder,
                   _send_order, change_fields=("order_id", "status"), enrich_sql=sql("yotpo_order_items.sql"),
                   classify=_order_conflict, reconcile=_reconcile_order),
        EntitySpec(destination, "refunds", own.for_object("yotpo.refunds"), sql("yotpo_refunds.sql"), YotpoRefund,
                   _send_refund, change_fields=("id",), reconcile=_reconcile_refund),
    ]


def run_yotpo_sync(con, client, instance: YotpoInstance, *, run_id: str, settings: SyncSettings | None = None,
                   now: datetime | None = None, ownership: FieldOwnership | None = None, pull: bool = True,
                   after_send: Callable[[str, dict], None] | None = None) -> DestinationResult:
    ensure_sync_schema(con)
    out = DestinationResult(instance.destination)
    subjects: set[str] = set()
    for spec in yotpo_specs(instance.destination, ownership):
        res = run_sync(con, spec, client, run_id=run_id, markets=list(instance.markets), settings=settings,
                       now=now, after_send=after_send)
        out.entities[spec.entity] = res
        subjects.update(res.ok_subjects)
    if pull:
        out.pulled, out.pull_errors = pull_loyalty(con, client, instance, sorted(subjects), run_id=run_id, now=now)
    return out


# ---- the pull: points balance, VIP tier, referral code per changed customer ---------------------------
SNAPSHOT_SCHEMA = pa.schema([("customer_key", pa.string()), ("email", pa.string()), ("points_balance", pa.int64()),
                             ("points_earned", pa.int64()), ("vip_tier", pa.string()),
                             ("referral_code", pa.string()), ("found", pa.bool_())])


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _referral_code(remote: dict) -> str | None:
    for key in ("referral_code", "referral_link"):
        value = remote.get(key)
        if isinstance(value, dict) and value.get("code"):
            return str(value["code"])
        if isinstance(value, str) and value:
            return value
    return None


def pull_loyalty(con, client, instance: YotpoInstance, changed: list[str], *, run_id: str,
                 now: datetime | None = None) -> tuple[int, int]:
    """Read the loyalty state of the customers this run changed in Yotpo, plus customers of the
    instance's markets that have no snapshot yet or had a record accepted after their snapshot (so a
    pull-less hourly run is caught up by the next pull), into ``ops.loyalty_snapshot``; then copy points and
    tier into ``analytics.customers`` (the columns the Yotpo pull owns). One GET per customer."""
    ensure_sync_schema(con)
    keys = pa.table({"customer_key": pa.array(changed, pa.string())})
    con.register("pull_changed", keys)
    try:
        targets = con.execute("""
            SELECT c.customer_key, c.email FROM analytics.customers c
            WHERE list_contains($markets, c.market_id) AND c.email IS NOT NULL
              AND (c.customer_key IN (SELECT customer_key FROM pull_changed)
                   OR NOT EXISTS (SELECT 1 FROM ops.loyalty_snapshot s
                                  WHERE s.destination = $destination AND s.customer_key = c.customer_key)
                   OR EXISTS (SELECT 1 FROM ops.loyalty_snapshot s JOIN ops.sync_state sent
                                ON sent.destination = s.destination AND sent.subject_key = s.customer_key
                              WHERE s.destination = $destination AND s.customer_key = c.customer_key
                                AND sent.status = 'ok' AND sent.last_attempt_at > s.fetched_at))
              AND EXISTS (SELECT 1 FROM ops.sync_state st WHERE st.destination = $destination
                          AND st.subject_key = c.customer_key AND st.first_ok_at IS NOT NULL)
            ORDER BY c.customer_key""",
                              {"markets": list(instance.markets), "destination": instance.destination}).fetchall()
    finally:
        con.unregister("pull_changed")
    rows, errors = [], 0
    for customer_key, email in targets:
        try:
            remote = client.get_customer(email=email, with_referral_code=True)
        except Exception:  # noqa: BLE001 - a failed read is retried by the next pull
            errors += 1
            continue
        if remote is None:
            rows.append({"customer_key": customer_key, "email": email, "points_balance": None, "points_earned": None,
                         "vip_tier": None, "referral_code": None, "found": False})
            continue
        rows.append({"customer_key": customer_key, "email": email, "points_balance": _int(remote.get("points_balance")),
                     "points_earned": _int(remote.get("points_earned")), "vip_tier": remote.get("vip_tier_name"),
                     "referral_code": _referral_code(remote), "found": True})
    if not rows:
        return 0, errors
    con.register("pull_rows", pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA))
    try:
        with transaction(con):
            run_sql(con, load_sql(SQL_PACKAGE, "loyalty_snapshot.sql"),
                    {"destination": instance.destination, "now": now or datetime.now(timezone.utc),
                         "run_id": run_id})
            run_sql(con, load_sql(SQL_PACKAGE, "loyalty_to_customers.sql"), {"destination": instance.destination})
    finally:
        con.unregister("pull_rows")
    return len(rows), errors
