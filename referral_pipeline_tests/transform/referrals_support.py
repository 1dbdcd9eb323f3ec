"""Hand-written worlds for the referral stages: a temporary DuckDB with the staging tables, the
identity tables and ``analytics.customers``/``analytics.orders`` exactly as docs/transforms.md
specifies them (the identity stage is built elsewhere), and helpers that insert rows by column name.

Default programs: market ``us`` (USD, camp-us: sf USD, ct store us, bc; min order 50, reward 20 USD)
and ``uk`` (GBP, camp-uk: sf GBP, ct store uk; min order 40), with small thresholds so scenarios
stay short: advocate_per_24h 2, ip_per_hour 2, advocate_monthly_cap 2, windows 30 days, grace 7.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import yaml

from referral_pipeline.config.programs import Programs
from referral_pipeline.transform.staging.runner import ensure_staging_schema
from referral_pipeline.warehouse.schema import ensure_schema

UTC = timezone.utc
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)   # the day referral activity starts in most scenarios


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


PROGRAMS = {
    "defaults": {"attribution_window_days": 30, "return_window_days": 30, "advocate_monthly_cap": 2,
                 "velocity": {"advocate_per_24h": 2, "ip_per_hour": 2}, "reconciliation_grace_days": 7},
    "sources": [{"id": "sf", "type": "salesforce"}, {"id": "ct", "type": "commercetools"},
                {"id": "bc", "type": "bigcommerce"}],
    "markets": [
        {"id": "us", "business_unit": "acme-us", "currency": "USD",
         "match": [{"source": "sf", "currency": "USD"}, {"source": "ct", "store": "us"}, {"source": "bc"}],
         "friendbuy": {"campaign_id": "camp-us"}, "min_order_value": 50,
         "advocate_reward": {"amount": 20, "currency": "USD"}},
        {"id": "uk", "business_unit": "acme-uk", "currency": "GBP",
         "match": [{"source": "sf", "currency": "GBP"}, {"source": "ct", "store": "uk"}],
         "friendbuy": {"campaign_id": "camp-uk"}, "min_order_value": 40,
         "advocate_reward": {"amount": 15, "currency": "GBP"}},
    ],
}


def programs(**overrides) -> Programs:
    data = json.loads(json.dumps(PROGRAMS))
    data["defaults"].update(overrides)
    return Programs.model_validate(data)


def write_programs(path: Path, **overrides) -> Path:
    data = json.loads(json.dumps(PROGRAMS))
    data["defaults"].update(overrides)
    path.write_text(yaml.safe_dump(data))
    return path


IDENTITY_DDL = """
CREATE SCHEMA IF NOT EXISTS identity;
CREATE TABLE IF NOT EXISTS identity.customer_map (
    identity_key VARCHAR PRIMARY KEY, customer_key VARCHAR NOT NULL, email_normalized_at_assignment VARCHAR,
    assigned_at TIMESTAMPTZ, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS identity.email_index (
    email_normalized VARCHAR PRIMARY KEY, customer_key VARCHAR NOT NULL, first_seen_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS analytics.customers (
    customer_key VARCHAR PRIMARY KEY, email VARCHAR, email_canonical VARCHAR, first_name VARCHAR, last_name VARCHAR,
    market_id VARCHAR, sf_contact_id VARCHAR, sf_account_id VARCHAR, first_order_at TIMESTAMPTZ, orders_count BIGINT,
    net_revenue DECIMAL(18,4), referral_code VARCHAR, loyalty_points_balance BIGINT, loyalty_vip_tier VARCHAR,
    email_normalized VARCHAR, marketing_consent BOOLEAN, created_at TIMESTAMPTZ, source_record_keys VARCHAR[]);
CREATE TABLE IF NOT EXISTS analytics.orders (
    order_key VARCHAR PRIMARY KEY, source VARCHAR, source_order_id VARCHAR, customer_key VARCHAR, market_id VARCHAR,
    placed_at TIMESTAMPTZ, status VARCHAR, currency VARCHAR, gross_amount DECIMAL(18,4), discount_amount DECIMAL(18,4),
    tax_amount DECIMAL(18,4), shipping_amount DECIMAL(18,4), refunded_amount DECIMAL(18,4), net_amount DECIMAL(18,4),
    coupon_codes VARCHAR[], referral_code VARCHAR, attribution_id VARCHAR, ip_address VARCHAR, user_agent VARCHAR,
    order_number VARCHAR, channel VARCHAR, device_id VARCHAR, email_normalized VARCHAR, updated_at TIMESTAMPTZ{load_seq});
"""


def new_db(path: str = ":memory:", orders_load_seq: bool = True, customers_load_seq: bool = False) -> duckdb.DuckDBPyConnection:
    """``orders_load_seq``: ``analytics.orders`` carries staging's ``load_seq`` as the identity
    stage's view does (attribution then runs incrementally); without it, every run is a full one.
    ``customers_load_seq``: ``analytics.customers`` carries the identity stage's write sequence
    (the events stage then runs incrementally)."""
    con = duckdb.connect(path)
    ensure_schema(con)
    ensure_staging_schema(con)
    con.execute(IDENTITY_DDL.replace("{load_seq}", ", load_seq BIGINT" if orders_load_seq else ""))
    if customers_load_seq:
        con.execute("ALTER TABLE analytics.customers ADD COLUMN load_seq BIGINT")
    return con


def insert(con: duckdb.DuckDBPyConnection, table: str, **values) -> None:
    """INSERT one row naming its columns; unknown column names fail loudly."""
    known = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    unknown = set(values) - known
    if unknown:
        raise KeyError(f"{table} has no columns {sorted(unknown)}")
    cols = list(values)
    con.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [values[c] for c in cols])


def canonical(email: str) -> str:
    local, domain = email.lower().strip().split("@")
    local = local.split("+")[0]
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


class World:
    """Builds one scenario. Customers are keyed ``cus_<name>`` with one Salesforce record
    ``sf:<NAME>`` (Friendbuy knows them by that id) unless told otherwise."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.n = 0

    def _seq(self) -> int:
        self.n += 1
        return self.n

    # ---- identity / analytics inputs ------------------------------------------------------------
    def customer(self, name: str, email: str | None = None, created_at: datetime | None = None, market: str = "us",
                 records: tuple[str, ...] | None = None) -> str:
        key = f"cus_{name}"
        email = (email or f"{name}@example.com").lower()
        records = records if records is not None else (f"sf:{name.upper()}",)
        seq = {"load_seq": self._seq()} if self._has_column("customers", "load_seq") else {}
        insert(self.con, "analytics.customers", customer_key=key, email=email, email_normalized=email,
               email_canonical=canonical(email), first_name=name.title(), market_id=market,
               created_at=created_at or datetime(2025, 1, 1, tzinfo=UTC), source_record_keys=list(records), **seq)
        for record in records:
            insert(self.con, "identity.customer_map", identity_key=record, customer_key=key,
                   email_normalized_at_assignment=email, assigned_at=T0)
        if self.con.execute("SELECT count(*) FROM identity.email_index WHERE email_normalized = ?", [email]).fetchall()[0][0] == 0:
            insert(self.con, "identity.email_index", email_normalized=email, customer_key=key, first_seen_at=T0)
        return key

    def order(self, key: str, customer: str, placed_at: datetime, *, status: str = "completed", currency: str = "USD",
              market: str = "us", gross: float = 100, discount: float = 0, refunded: float = 0, coupons=(),
              referral_code: str | None = None, ip: str | None = None, order_number: str | None = None) -> str:
        source, _, source_id = key.partition(":")
        gross, discount, refunded = Decimal(str(gross)), Decimal(str(discount)), Decimal(str(refunded))
        insert(self.con, "analytics.orders", order_key=key, source=source, source_order_id=source_id,
               customer_key=f"cus_{customer}", market_id=market, placed_at=placed_at, status=status, currency=currency,
               gross_amount=gross, discount_amount=discount, tax_amount=Decimal(0), shipping_amount=Decimal(0),
               refunded_amount=refunded, net_amount=gross - discount - refunded,
               coupon_codes=[c.upper() for c in coupons], referral_code=referral_code, ip_address=ip,
               order_number=order_number, updated_at=placed_at, **self._order_seq())
        return key

    def _has_column(self, table: str, column: str) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'analytics' "
                                     "AND table_name = ? AND column_name = ?", [table, column]).fetchall()[0][0])

    def _order_seq(self) -> dict:
        return {"load_seq": self._seq()} if self._has_column("orders", "load_seq") else {}

    def set_order(self, key: str, **values) -> None:
        """Change an order as a later extraction would (status, refunds...); net follows refunds."""
        values = {**values, **self._order_seq()}
        sets = ", ".join(f"{c} = ?" for c in values)
        self.con.execute(f"UPDATE analytics.orders SET {sets} WHERE order_key = ?", [*values.values(), key])
        self.con.execute("UPDATE analytics.orders SET net_amount = gross_amount - discount_amount - refunded_amount "
                         "WHERE order_key = ?", [key])

    # ---- Friendbuy (staging.referral_events) -----------------------------------------------------
    def event(self, kind: str, when: datetime, *, campaign: str = "camp-us", advocate: str | None = None,
              advocate_email: str | None = None, friend: str | None = None, friend_email: str | None = None,
              code: str | None = None, coupon: str | None = None, order_id: str | None = None,
              ip: str | None = None, channel: str | None = None, amount: float | None = None, key: str | None = None) -> str:
        """``advocate``/``friend`` are customer names (sent as their Salesforce record id, as
        storefront tracking does), or None; ``*_email`` identify a party by email instead."""
        event_key = key or f"fb:{kind}:{self._seq()}"
        insert(self.con, "staging.referral_events", event_key=event_key, source="fb", kind=kind, campaign_id=campaign,
               occurred_at=when, advocate_customer_id=advocate.upper() if advocate else None,
               advocate_email=advocate_email, friend_customer_id=friend.upper() if friend else None,
               friend_email=friend_email, referral_code=code, coupon_code=coupon.upper() if coupon else None,
               order_id=order_id, ip_address=ip, channel=channel,
               amount=Decimal(str(amount)) if amount is not None else None, load_seq=self.n)
        return event_key

    def share(self, advocate: str, code: str, when: datetime, **kw) -> str:
        return self.event("share", when, advocate=advocate, code=code, channel=kw.pop("channel", "email"), **kw)

    def click(self, advocate: str, code: str, when: datetime, **kw) -> str:
        return self.event("click", when, advocate=advocate, code=code, **kw)

    def signup(self, advocate: str, friend: str, when: datetime, **kw) -> str:
        return self.event("signup", when, advocate=advocate, friend=friend, **kw)

    def incentive(self, advocate: str, friend: str | None, coupon: str, when: datetime, **kw) -> str:
        return self.event("friend_incentive", when, advocate=advocate, friend=friend, coupon=coupon, **kw)

    def reward_distributed(self, advocate: str, friend: str, when: datetime, amount: float = 20, **kw) -> str:
        return self.event("advocate_reward", when, advocate=advocate, friend=friend, amount=amount, **kw)

    # ---- platforms and Salesforce ------------------------------------------------------------------
    def coupon(self, code: str, source: str = "ct", *, active: bool = True, max_uses: int | None = 1,
               store: str | None = "us", currency: str | None = None, valid_from: datetime | None = None,
               valid_until: datetime | None = None, requires_code: bool = True,
               name: str = "Refer-a-friend: friend incentive") -> None:
        seq = self._seq()
        insert(self.con, "staging.coupons", coupon_key=f"{source}:c{seq}", source=source, code=code.upper(),
               source_id=f"c{seq}", is_active=active, max_uses=max_uses, valid_from=valid_from,
               valid_until=valid_until, requires_code=requires_code, currency=currency, store=store, name=name,
               load_seq=seq)

    def review(self, reward_key: str, decision: str, stamp: datetime, notes: str = "checked", pk: str | None = None) -> None:
        """A Referral_Reward__c row as the Salesforce extraction lands it (raw.sf__referral_reward)."""
        self.con.execute("""CREATE TABLE IF NOT EXISTS raw.sf__referral_reward (
            pk VARCHAR PRIMARY KEY, stamp TIMESTAMPTZ, payload VARCHAR NOT NULL, payload_hash UBIGINT NOT NULL,
            is_deleted BOOLEAN NOT NULL DEFAULT FALSE, first_seen_at TIMESTAMPTZ NOT NULL, loaded_at TIMESTAMPTZ NOT NULL,
            load_seq BIGINT NOT NULL, run_id VARCHAR)""")
        pk = pk or f"a0R{reward_key[-12:]}"
        payload = json.dumps({"Id": pk, "Reward_Key__c": reward_key, "Review_Decision__c": decision,
                              "Review_Notes__c": notes, "SystemModstamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")})
        self.con.execute("DELETE FROM raw.sf__referral_reward WHERE pk = ?", [pk])
        insert(self.con, "raw.sf__referral_reward", pk=pk, stamp=stamp, payload=payload, payload_hash=hash(payload) % 2**63,
               first_seen_at=stamp, loaded_at=stamp, load_seq=self._seq())


def rows(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def reward_key(campaign: str, friend_customer_key: str) -> str:
    import hashlib
    return "rwd_" + hashlib.sha256(f"{campaign}|{friend_customer_key}".encode()).hexdigest()[:16]


def flag_id(rule: str, subject_type: str, subject_key: str) -> str:
    import hashlib
    return "flg_" + hashlib.sha256(f"{rule}|{subject_type}|{subject_key}".encode()).hexdigest()[:16]


def refresh_first_orders(con: duckdb.DuckDBPyConnection) -> None:
    """What the identity stage keeps in analytics.customers.first_order_at: the customer's earliest
    order that is not cancelled, declined or incomplete."""
    first = """(SELECT min(o.placed_at) FROM analytics.orders o
               WHERE o.customer_key = c.customer_key AND o.status NOT IN ('cancelled', 'declined', 'incomplete'))"""
    tracked = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'analytics' "
                          "AND table_name = 'customers' AND column_name = 'load_seq'").fetchall()[0][0]
    if tracked:   # as the identity stage does: a rewritten customer gets a new write sequence value
        seq = con.execute("SELECT coalesce(max(load_seq), 0) + 1 FROM analytics.customers").fetchall()[0][0]
        con.execute(f"UPDATE analytics.customers c SET first_order_at = {first}, load_seq = ? "
                    f"WHERE first_order_at IS DISTINCT FROM {first}", [seq])
    else:
        con.execute(f"UPDATE analytics.customers c SET first_order_at = {first}")


def run_chain(con: duckdb.DuckDBPyConnection, as_of: datetime, run_id: str = "r1", progs: Programs | None = None):
    """Every referral stage in order, as one scheduled run would (identity's first_order_at refreshed first)."""
    from referral_pipeline.transform.referral_chain import run_referral_chain
    refresh_first_orders(con)
    return run_referral_chain(con, progs or programs(), as_of, run_id)


def changed(results: dict) -> dict[str, int]:
    """Rows written per stage (inserted + updated + deleted, new flags, ledger rows) — all 0 on a no-op run."""
    out = {}
    for name, r in results.items():
        if hasattr(r, "changes"):
            out[name] = r.changes.changed
        if hasattr(r, "new_flags"):
            out[name] = r.new_flags
        if hasattr(r, "ledger_rows"):
            out[name] = r.changes.changed + r.ledger_rows + r.attribution_rows_updated
    return out
