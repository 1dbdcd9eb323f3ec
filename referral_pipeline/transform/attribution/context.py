"""What every referral stage sets up first (TEMP macros, the programs as TEMP tables, the TEMP view
``fb_events`` over ``analytics.referral_events``), and the stage that writes
``analytics.referral_events``: the Friendbuy activity of the programs' campaigns with its market
and both parties resolved to a ``customer_key``."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..runtime import (Progress, SyncCounts, create_temp, has_column, load_sql, run_sql, sync_table, transaction,
                       write_program_tables)

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
    mode: str = "full"            # full | incremental
    evaluated: int = 0            # events (re)computed by this run

    def as_metadata(self) -> dict:
        return {"events": self.events, "by_kind": self.by_kind, "unresolved_parties": self.unresolved,
                "mode": self.mode, "evaluated_events": self.evaluated, **self.changes.as_metadata()}


EVENTS_STAGE = "referral_events"


def _events_incremental(con: duckdb.DuckDBPyConnection, progress: Progress, rebuild: bool) -> bool:
    """Incremental when the marks are stored, the programs unchanged, both inputs carry ``load_seq``
    and no customer disappeared (the identity stage never removes one; a rebuilt warehouse may)."""
    if rebuild or not progress.ok():
        return False
    if not (has_column(con, "analytics.customers", "load_seq") and has_column(con, "staging.referral_events", "load_seq")):
        return False
    return con.execute("SELECT count(*) FROM analytics.customers").fetchall()[0][0] >= progress.mark("customers_count")


def run_referral_events(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime,
                        rebuild: bool = False) -> EventsResult:
    """Compute the resolved activity (events at or before ``as_of``) and merge it into
    ``analytics.referral_events``, touching only the rows that changed. Incremental after the first
    run: only the events in ``events_scope.sql`` (changed staging rows, events whose parties'
    identity changed, events crossing the ``as_of`` cut, removed events) are recomputed."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    with transaction(con):
        prepare_referral_context(con, programs)
        progress = Progress(con, EVENTS_STAGE, ["staging.referral_events", "analytics.customers", "customers_count"])
        incremental = _events_incremental(con, progress, rebuild)
        params = {"as_of": as_of, "full": not incremental}
        if incremental:
            evaluated = create_temp(con, "ev_scope", load_sql(SQL, "events_scope.sql"), {
                **params, "prev_as_of": progress.prev_as_of(as_of),
                "events_wm": progress.mark("staging.referral_events"), "customers_wm": progress.mark("analytics.customers")})
        else:
            create_temp(con, "ev_scope", "SELECT CAST(NULL AS VARCHAR) AS event_key WHERE FALSE")
        computed = create_temp(con, "events_new", load_sql(SQL, "events.sql"), params)
        run_sql(con, load_sql(SQL, "events_replaced.sql"), params)
        changes = sync_table(con, "analytics.referral_events", "events_new", ["event_key"], ignore=["updated_at"],
                             scope=None if not incremental else "t.event_key IN (SELECT event_key FROM ev_scope)")
        if not incremental:
            evaluated = computed
        _save_events_progress(con, progress, as_of)
        events = con.execute("SELECT count(*) FROM analytics.referral_events").fetchall()[0][0]
        by_kind = dict(con.execute("SELECT kind, count(*) FROM analytics.referral_events GROUP BY 1 ORDER BY 1").fetchall())
        unresolved = dict(con.execute("""
            SELECT party, count(*) FROM (
                SELECT 'advocate' AS party FROM analytics.referral_events WHERE advocate_customer_key IS NULL
                   AND (advocate_customer_id IS NOT NULL OR advocate_email IS NOT NULL)
                UNION ALL
                SELECT 'friend' FROM analytics.referral_events WHERE friend_customer_key IS NULL
                   AND (friend_customer_id IS NOT NULL OR friend_email IS NOT NULL))
            GROUP BY 1 ORDER BY 1""").fetchall())
        con.execute("DROP TABLE events_new")
        con.execute("DROP TABLE ev_scope")
    return EventsResult(events, by_kind, unresolved, changes, "incremental" if incremental else "full", evaluated)


def _save_events_progress(con: duckdb.DuckDBPyConnection, progress: Progress, as_of: datetime) -> None:
    if not (has_column(con, "analytics.customers", "load_seq") and has_column(con, "staging.referral_events", "load_seq")):
        return
    events_wm, customers_wm, customers = con.execute(
        "SELECT (SELECT coalesce(max(load_seq), 0) FROM staging.referral_events), "
        "(SELECT coalesce(max(load_seq), 0) FROM analytics.customers), (SELECT count(*) FROM analytics.customers)").fetchall()[0]
    progress.save(as_of, **{"staging.referral_events": events_wm, "analytics.customers": customers_wm,
                            "customers_count": customers})
