"""Helpers for sync tests: a DuckDB with the warehouse + staging schemas and small analytics tables
(built directly, as the identity stage would), row helpers by column name, a Yotpo simulator."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal

import duckdb
import requests

from referral_pipeline.clients.yotpo import YotpoClient
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sandbox.yotpo import YotpoSimulator
from referral_pipeline.sync.engine import ensure_sync_schema
from referral_pipeline.transform.staging.runner import ensure_staging_schema
from referral_pipeline.warehouse.schema import ensure_schema

GUID, KEY = "sandbox-yotpo-guid", "sandbox-yotpo-api-key"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)

ANALYTICS_SQL = """
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE IF NOT EXISTS analytics.customers (
    customer_key VARCHAR PRIMARY KEY, email VARCHAR, email_canonical VARCHAR, first_name VARCHAR, last_name VARCHAR,
    market_id VARCHAR, sf_contact_id VARCHAR, sf_account_id VARCHAR, first_order_at TIMESTAMPTZ, orders_count BIGINT,
    net_revenue DECIMAL(18,4), referral_code VARCHAR, loyalty_points_balance BIGINT, loyalty_vip_tier VARCHAR,
    email_normalized VARCHAR, marketing_consent BOOLEAN, phone VARCHAR, is_deleted BOOLEAN);
CREATE TABLE IF NOT EXISTS analytics.orders (
    order_key VARCHAR PRIMARY KEY, source VARCHAR, source_order_id VARCHAR, customer_key VARCHAR, market_id VARCHAR,
    placed_at TIMESTAMPTZ, status VARCHAR, currency VARCHAR, gross_amount DECIMAL(18,4), discount_amount DECIMAL(18,4),
    tax_amount DECIMAL(18,4), shipping_amount DECIMAL(18,4), refunded_amount DECIMAL(18,4), net_amount DECIMAL(18,4),
    coupon_codes VARCHAR[], referral_code VARCHAR, attribution_id VARCHAR, ip_address VARCHAR, user_agent VARCHAR,
    email_normalized VARCHAR);
"""


def new_db(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    ensure_schema(con)
    ensure_staging_schema(con)
    con.execute(ANALYTICS_SQL)
    ensure_sync_schema(con)
    return con


def upsert(con, table: str, key: str, row: dict) -> None:
    con.execute(f"DELETE FROM {table} WHERE {key} = ?", [row[key]])
    cols = ", ".join(row)
    con.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


def customer(con, key: str, email: str, market: str = "us", **extra) -> None:
    row = {"customer_key": key, "email": email, "email_normalized": email.lower(), "first_name": key.title(),
           "last_name": "Test", "market_id": market, "marketing_consent": True}
    upsert(con, "analytics.customers", "customer_key", {**row, **extra})


def order(con, key: str, customer_key: str, email: str, status: str = "paid", gross: str = "100.00",
          market: str = "us", **extra) -> None:
    row = {"order_key": key, "source": key.split(":")[0], "source_order_id": key.split(":")[1],
           "customer_key": customer_key, "market_id": market, "placed_at": datetime(2026, 5, 1, tzinfo=timezone.utc),
           "status": status, "currency": "USD", "gross_amount": Decimal(gross), "discount_amount": Decimal("0"),
           "tax_amount": Decimal("8.00"), "shipping_amount": Decimal("5.00"), "refunded_amount": Decimal("0"),
           "net_amount": Decimal(gross), "coupon_codes": [], "email_normalized": email,
           "ip_address": "10.0.0.1", "user_agent": "pytest"}
    upsert(con, "analytics.orders", "order_key", {**row, **extra})


def item(con, order_key: str, line: str, sku: str, qty: int, unit: str) -> None:
    upsert(con, "staging.order_items", "order_item_key",
           {"order_item_key": f"{order_key}:{line}", "order_key": order_key, "source": order_key.split(":")[0],
            "sku": sku, "name": sku.title(), "quantity": Decimal(qty), "unit_price": Decimal(unit),
            "total_price": Decimal(unit) * qty, "currency": "USD"})


def refund(con, refund_key: str, order_key: str, amount: str, kind: str = "refund") -> None:
    upsert(con, "staging.refunds", "refund_key",
           {"refund_key": refund_key, "order_key": order_key, "source": refund_key.split(":")[0],
            "source_refund_id": refund_key.split(":")[1], "amount": Decimal(amount), "currency": "USD",
            "created_at": datetime(2026, 5, 3, tzinfo=timezone.utc), "kind": kind})


def make_sim(rate_per_second: float | None = 0, faults: FaultSpec | None = None, options: dict | None = None,
             tiers: list[dict] | None = None, tmp_path=None) -> YotpoSimulator:
    rate_limit = {"requests_per_second": rate_per_second} if rate_per_second is not None else {}
    root = None
    if tiers and tmp_path is not None:
        import orjson
        folder = tmp_path / "fx" / "yotpo"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vip-tiers.jsonl").write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in tiers))
        root = tmp_path / "fx"
    config = SystemConfig(options=options or {}, rate_limit=rate_limit, faults=faults or FaultSpec())
    return YotpoSimulator(config, data_root=root)


@contextmanager
def yotpo(**kwargs):
    with serve_in_thread(make_sim(**kwargs)) as sim:
        yield sim


def client_for(sim, rate: float | None = None, timeout: float = 10.0, **kw) -> YotpoClient:
    return YotpoClient(sim.base_url + "/api/v2", GUID, KEY, rate_limit_per_second=rate, timeout=(2.0, timeout),
                       backoff_base=0.05, backoff_cap=0.3, **kw)


def sim_state(sim) -> dict:
    return requests.get(sim.base_url + "/_sandbox/state", timeout=10).json()


def set_faults(sim, **faults) -> None:
    r = requests.post(sim.base_url + "/_sandbox/faults", json=faults, timeout=10)
    assert r.status_code == 200, r.text


def writes(sim) -> int:
    return sum(v for k, v in sim.request_counts.items() if k.startswith("POST"))
