"""Helpers for identity tests: a temporary DuckDB with the staging tables, and functions that upsert
staging rows by column name (as the staging runner does: a changed row gets a new ``load_seq``)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from decimal import Decimal

import duckdb

from referral_pipeline.config.programs import Programs, load_programs
from referral_pipeline.resources import REPO_ROOT
from referral_pipeline.transform.identity.runner import ensure_identity_schema, run_identity

SOURCE_TYPES = {"sf": "salesforce", "ct": "commercetools", "bc": "bigcommerce"}
AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def cus(text: str) -> str:
    """The key a new identity gets: from its email, or from its identity key when it has no email."""
    return "cus_" + hashlib.sha256(text.encode()).hexdigest()[:16]


def programs() -> Programs:
    return load_programs(REPO_ROOT / "data" / "programs.yaml")


def new_db(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    ensure_identity_schema(con)
    con.execute("CREATE SEQUENCE IF NOT EXISTS main.test_load_seq")
    return con


def _upsert(con, table: str, key: str, row: dict) -> None:
    row["load_seq"] = con.execute("SELECT nextval('main.test_load_seq')").fetchall()[0][0]
    con.execute(f"DELETE FROM {table} WHERE {key} = ?", [row[key]])
    cols = ", ".join(row)
    con.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


def _norm(email: str | None) -> str | None:
    if email is None:
        return None
    value = email.strip().lower()
    return value if "@" in value and "." in value.split("@")[-1] else None


def customer(con, key: str, email: str | None = None, *, first_name: str | None = None, last_name: str | None = None,
             updated_at: str = "2026-01-01T00:00:00", created_at: str = "2025-06-01T00:00:00", **extra) -> None:
    source, source_id = key.split(":", 1)
    row = {"customer_record_key": key, "source": source, "source_type": SOURCE_TYPES[source],
           "source_customer_id": source_id, "email_raw": email.strip() if email else None, "email_normalized": _norm(email),
           "first_name": first_name, "last_name": last_name, "created_at": ts(created_at), "updated_at": ts(updated_at)}
    row.update(extra)
    _upsert(con, "staging.customers", "customer_record_key", row)


def order(con, key: str, customer_record_key: str | None = None, *, email: str | None = None, gross: str = "100",
          status: str = "completed", placed_at: str = "2026-03-01T12:00:00", currency: str = "USD", market_id: str = "us",
          discount: str = "0", refunded: str = "0", **extra) -> None:
    source, source_id = key.split(":", 1)
    g, d, r = Decimal(gross), Decimal(discount), Decimal(refunded)
    row = {"order_key": key, "source": source, "source_type": SOURCE_TYPES[source], "source_order_id": source_id,
           "customer_record_key": customer_record_key, "email_normalized": _norm(email), "market_id": market_id,
           "placed_at": ts(placed_at), "updated_at": ts(placed_at), "status": status, "currency": currency,
           "gross_amount": g, "discount_amount": d, "tax_amount": Decimal("0"), "shipping_amount": Decimal("0"),
           "refunded_amount": r, "net_amount": g - d - r, "coupon_codes": []}
    row.update(extra)
    _upsert(con, "staging.orders", "order_key", row)


def event(con, key: str, kind: str, *, occurred_at: str = "2026-02-01T00:00:00", **extra) -> None:
    row = {"event_key": f"fb:{kind}:{key}", "source": "fb", "kind": kind, "campaign_id": "camp-us",
           "occurred_at": ts(occurred_at)}
    row.update(extra)
    _upsert(con, "staging.referral_events", "event_key", row)


def delete_staged(con, table: str, key_column: str, key: str) -> None:
    """A record that moved to quarantine leaves staging."""
    con.execute(f"DELETE FROM {table} WHERE {key_column} = ?", [key])


def run(con, run_id: str = "r1", rebuild: bool = False, progs: Programs | None = None):
    return run_identity(con, progs or programs(), run_id, AS_OF, rebuild=rebuild)


def rows(con, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def customer_row(con, customer_key: str, columns: str) -> tuple | None:
    found = rows(con, f"SELECT {columns} FROM analytics.customers WHERE customer_key = ?", [customer_key])
    return found[0] if found else None


def key_of(con, identity_key: str) -> str | None:
    found = rows(con, "SELECT customer_key FROM identity.customer_map WHERE identity_key = ?", [identity_key])
    return found[0][0] if found else None


def snapshot(con, versions: bool = True) -> dict[str, list[tuple]]:
    """Every output table, sorted, for idempotency comparisons (``versions=False``: without
    analytics.customers.load_seq, the write sequence of the run that computed the row)."""
    tables = {"identity.customer_map": "identity_key", "identity.email_index": "email_normalized",
              "identity.record_state": "customer_record_key", "identity.referral_parties": "event_key",
              "identity.order_state": "order_hash",
              "analytics.orders": "order_key", "analytics.customers": "customer_key"}
    out = {t: rows(con, f"SELECT * FROM {t} ORDER BY {k}") for t, k in tables.items()}
    if not versions:
        out["analytics.customers"] = rows(con, "SELECT * EXCLUDE (load_seq) FROM analytics.customers ORDER BY customer_key")
    return out
