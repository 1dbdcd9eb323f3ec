"""What every referral stage sets up first (TEMP macros, the programs as TEMP tables, the TEMP views
``fb_events`` over ``analytics.referral_events`` and ``order_ids``), the reads of a few orders of
``analytics.orders`` (``orders_where``, ``changed_orders``: on the identity stage's view, without
its join of every read with the 1M-row customer map), and the stage that writes
``analytics.referral_events``: the Friendbuy activity of the programs' campaigns with its market
and both parties resolved to a ``customer_key``."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..runtime import (Progress, SyncCounts, create_temp, digest, has_column, ident, load_sql, program_rows, run_sql,
                       setup_once, sync_table, transaction, write_program_tables)

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
    schema = load_sql(SQL, "schema.sql")
    setup_once(con, "attribution_schema", digest(schema), lambda: con.execute(schema))


def _is_view(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ? AND NOT temporary",
                            [schema, name]).fetchall()[0][0])


def on_identity_orders(con: duckdb.DuckDBPyConnection) -> bool:
    """``analytics.orders`` is the identity stage's view, with its ``identity.staged_orders`` (the
    staged rows behind it) and ``identity.orders_of`` (its customer join over a table of such rows;
    created with the view by identity/schema.sql, not looked up: duckdb_functions() costs 13 ms)."""
    return _is_view(con, "analytics", "orders") and _is_view(con, "identity", "staged_orders")


def order_ids_view(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP view ``order_ids`` (order_key, order_number, source_order_id, market_id): the rows of
    ``analytics.orders`` without their customer. On the identity stage's view, its staged rows
    (the same rows: the view's join is a LEFT join on the map's primary key), so a lookup by key,
    number or id does not also read and hash the 1M-row customer map."""
    source = "identity.staged_orders" if on_identity_orders(con) else "analytics.orders"
    con.execute(f"CREATE OR REPLACE TEMP VIEW order_ids AS "
                f"SELECT order_key, order_number, source_order_id, market_id FROM {source}")


def identity_orders_current(con: duckdb.DuckDBPyConnection) -> bool:
    """``identity.order_state`` holds exactly the staged orders behind ``analytics.orders`` (the
    identity stage ran since staging last changed): same count, sum and xor of ``load_seq``, which
    every staged row version has of its own (raw.load_seq). Then its ``order_hash`` column answers
    "is this order still there" without reading 5M order keys."""
    if not on_identity_orders(con):
        return False
    digest = "SELECT count(*), sum(load_seq), bit_xor(load_seq) FROM "
    return (con.execute(digest + "identity.staged_orders").fetchall()
            == con.execute(digest + "identity.order_state").fetchall())


def orders_where(con: duckdb.DuckDBPyConnection, name: str, where: str, columns: list[str] | None = None,
                 params: dict | None = None, customers: str | None = None) -> int:
    """TEMP table ``name``: ``SELECT <columns> FROM analytics.orders WHERE <where>`` (every column
    when ``columns`` is None; ``where``: a condition on columns of the staged order, not on
    customer_key), with ``customers`` (a query of customer keys) only the orders of those customers;
    returns its row count. On the identity stage's view, the staged rows that match are copied
    first (only the columns asked for) and joined to the customer map: the join then builds on
    those few rows (their count known) instead of on the 1M-row map, 3-20x cheaper for a delta."""
    wanted = ", ".join(columns) if columns else "*"
    if not on_identity_orders(con):
        if customers:
            where = f"({where}) AND customer_key IN ({customers})"
        return create_temp(con, name, f"SELECT {wanted} FROM analytics.orders WHERE {where}", params)
    staged = ident(f"{name}_staged")
    if columns:          # plain staged columns, and customer_key from the map
        create_temp(con, staged, f"SELECT {', '.join([c for c in columns if c != 'customer_key'] + ['identity_key'])} "
                                 f"FROM identity.staged_orders WHERE {where}", params)
        select = (f"SELECT {', '.join('m.customer_key' if c == 'customer_key' else f'o.{ident(c)}' for c in columns)} "
                  f"FROM {staged} o LEFT JOIN identity.customer_map m ON m.identity_key = o.identity_key")
        customer = "m.customer_key"
    else:
        create_temp(con, staged, f"SELECT * FROM identity.staged_orders WHERE {where}", params)
        select, customer = f"SELECT * FROM identity.orders_of('{staged}')", "customer_key"
    if customers:
        select += f" WHERE {customer} IN ({customers})"
    count = create_temp(con, name, select, params)
    con.execute(f"DROP TABLE {staged}")
    return count


def changed_orders(con: duckdb.DuckDBPyConnection, name: str, mark: int, columns: list[str] | None = None) -> int:
    """TEMP table ``name``: the rows of ``analytics.orders`` with ``load_seq`` above ``mark``."""
    return orders_where(con, name, f"load_seq > {int(mark)}", columns)


def prepare_referral_context(con: duckdb.DuckDBPyConnection, programs: Programs) -> None:
    """TEMP macros, ``program_rules``, ``market_sources``, the views ``fb_events`` and ``order_ids``.
    All but ``order_ids`` (which depends on what ``analytics.orders`` is) are made once per
    connection and version of the SQL and programs (``runtime.setup_once``), not by every stage."""
    ensure_attribution_schema(con)
    macros = load_sql(SQL, "macros.sql")

    def create() -> None:
        con.execute(macros)
        write_program_tables(con, programs)
        con.execute(FB_EVENTS_VIEW)

    setup_once(con, "referral_context", digest(macros, FB_EVENTS_VIEW, program_rows(programs)), create)
    order_ids_view(con)


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
    run: only the events in ``events_scope.sql`` (changed staging rows, events naming a party the
    identity rows added since the last run can resolve, events crossing the ``as_of`` cut, removed
    events) are recomputed."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    with transaction(con):
        prepare_referral_context(con, programs)
        by_map = _map_seq_tracked(con)
        progress = Progress(con, EVENTS_STAGE, ["staging.referral_events", "analytics.customers", "customers_count",
                                                *([MAP_MARK] if by_map else [])])
        incremental = _events_incremental(con, progress, rebuild)
        params = {"as_of": as_of, "full": not incremental}
        if incremental:
            if by_map:
                create_temp(con, "ev_parties", load_sql(SQL, "events_parties_new.sql"), {"map_wm": progress.mark(MAP_MARK)})
            else:
                create_temp(con, "ev_parties", load_sql(SQL, "events_parties_changed.sql"),
                            {"customers_wm": progress.mark("analytics.customers")})
            evaluated = create_temp(con, "ev_scope", load_sql(SQL, "events_scope.sql"), {
                **params, "prev_as_of": progress.prev_as_of(as_of), "events_wm": progress.mark("staging.referral_events")})
            con.execute("DROP TABLE ev_parties")
        else:
            create_temp(con, "ev_scope", "SELECT CAST(NULL AS VARCHAR) AS event_key WHERE FALSE")
        computed = create_temp(con, "events_new", load_sql(SQL, "events.sql"), params)
        run_sql(con, load_sql(SQL, "events_replaced.sql"), params)
        changes = sync_table(con, "analytics.referral_events", "events_new", ["event_key"], ignore=["updated_at"],
                             scope=None if not incremental else "t.event_key IN (SELECT event_key FROM ev_scope)")
        if not incremental:
            evaluated = computed
        _save_events_progress(con, progress, as_of, by_map)
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


def _save_events_progress(con: duckdb.DuckDBPyConnection, progress: Progress, as_of: datetime, by_map: bool) -> None:
    if not (has_column(con, "analytics.customers", "load_seq") and has_column(con, "staging.referral_events", "load_seq")):
        return
    events_wm, customers_wm, customers = con.execute(
        "SELECT (SELECT coalesce(max(load_seq), 0) FROM staging.referral_events), "
        "(SELECT coalesce(max(load_seq), 0) FROM analytics.customers), (SELECT count(*) FROM analytics.customers)").fetchall()[0]
    marks = {"staging.referral_events": events_wm, "analytics.customers": customers_wm, "customers_count": customers}
    if by_map:
        marks[MAP_MARK] = con.execute("SELECT greatest((SELECT coalesce(max(map_seq), 0) FROM identity.customer_map), "
                                      "(SELECT coalesce(max(map_seq), 0) FROM identity.email_index))").fetchall()[0][0]
    progress.save(as_of, **marks)


MAP_MARK = "identity.map_seq"


def _map_seq_tracked(con: duckdb.DuckDBPyConnection) -> bool:
    """The identity stage stamps the map and index rows it adds (identity.map_seq): the events stage
    then re-resolves only the parties those rows can resolve (events_parties_new.sql)."""
    return has_column(con, "identity.customer_map", "map_seq") and has_column(con, "identity.email_index", "map_seq")
