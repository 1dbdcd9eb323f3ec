"""What every referral stage sets up first (TEMP macros, the programs as TEMP tables, the TEMP view
``fb_events`` over ``analytics.referral_events``), and the stage that writes
``analytics.referral_events``: the Friendbuy activity of the programs' campaigns with its market
and both parties resolved to a ``customer_key``."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..runtime import SyncCounts, create_temp, load_sql, run_sql, sync_table, transaction, write_program_tables

SQL = f"{__package__}.sql"
EVENTS_INPUTS = ("analytics.customers", "identity.customer_map", "identity.email_index", "staging.referral_events")
ATTRIBUTION_INPUTS = ("analytics.referral_events", "analytics.orders", "analytics.customers")
PROMO_INPUTS = ("analytics.referral_events", "staging.coupons")

# the short names the referral SQL uses for the resolved parties
FB_EVENTS_VIEW = """
CREATE OR REPLACE TEMP VIEW fb_events AS
SELECT event_key, kind, market_id, campaign_id, occurred_at,
       advocate_customer_key AS advocate_key, friend_customer_key AS friend_key,
       advocate_customer_id, advocate_email, friend_customer_id, friend_email,
       referral_code, lower(referral_code) AS code_lc, coupon_code, order_id, amount, currency, channel,
       ip_address, user_agent, new_customer, reward_type
FROM analytics.referral_events
"""


def ensure_attribution_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(load_sql(SQL, "schema.sql"))


def prepare_referral_context(con: duckdb.DuckDBPyConnection, programs: Programs) -> None:
    """TEMP macros, ``program_rules``, ``market_sources`` and the view ``fb_events``."""
    ensure_attribution_schema(con)
    con.execute(load_sql(SQL, "macros.sql"))
    write_program_tables(con, programs)
    con.execute(FB_EVENTS_VIEW)


@dataclass
class EventsResult:
    events: int
    by_kind: dict[str, int] = field(default_factory=dict)
    unresolved: dict[str, int] = field(default_factory=dict)
    changes: SyncCounts = field(default_factory=SyncCounts)

    def as_metadata(self) -> dict:
        return {"events": self.events, "by_kind": self.by_kind, "unresolved_parties": self.unresolved,
                **self.changes.as_metadata()}


def run_referral_events(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime) -> EventsResult:
    """Recompute the resolved activity (events at or before ``as_of``) and merge it into
    ``analytics.referral_events``, touching only the rows that changed."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    with transaction(con):
        prepare_referral_context(con, programs)
        events = create_temp(con, "events_new", load_sql(SQL, "events.sql"), {"as_of": as_of})
        run_sql(con, load_sql(SQL, "events_replaced.sql"), {"as_of": as_of})
        changes = sync_table(con, "analytics.referral_events", "events_new", ["event_key"], ignore=["updated_at"])
        by_kind = dict(con.execute("SELECT kind, count(*) FROM events_new GROUP BY 1 ORDER BY 1").fetchall())
        unresolved = dict(con.execute("""
            SELECT party, count(*) FROM (
                SELECT 'advocate' AS party FROM events_new WHERE advocate_customer_key IS NULL
                   AND (advocate_customer_id IS NOT NULL OR advocate_email IS NOT NULL)
                UNION ALL
                SELECT 'friend' FROM events_new WHERE friend_customer_key IS NULL
                   AND (friend_customer_id IS NOT NULL OR friend_email IS NOT NULL))
            GROUP BY 1 ORDER BY 1""").fetchall())
        con.execute("DROP TABLE events_new")
    return EventsResult(events, by_kind, unresolved, changes)
