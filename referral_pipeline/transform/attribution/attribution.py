"""``analytics.referral_attribution``: which advocate each order is attributed to (product §5).

Incremental where it matters: the orders are the one large input, so a run re-evaluates only the
orders whose attribution may have changed (``attribution_signals_delta.sql``): orders whose row
changed (``analytics.orders.load_seq`` above the stored watermark; the identity stage's view
carries staging's ``load_seq``) or crossed the ``as_of`` cut, and the orders reachable from the
Friendbuy events that changed (``analytics.referral_events.load_seq``) by coupon code, referral
code, purchase id or signed-up customer. Purchase ids are re-matched only when they may name
other orders now (changed purchase rows or orders, ids that named several orders last time:
``ops.purchase_multi_ids``). Every other attributed order keeps its stored winner; its enrichment
(last click, last sign-up, channel, canonical emails, ``is_new_customer``) is recomputed only when
its inputs changed (events on its code or friend, customers the identity stage rewrote since the
``analytics.customers.load_seq`` mark; all rows when that column is missing). A full run (first run, ``rebuild``, changed
programs, or an ``analytics.orders`` without ``load_seq``) evaluates every order with a referral
signal. Both end in a merge that touches only the rows that changed; ``reward_key`` and
``no_reward_reason`` belong to the rewards stage and are kept on rewritten rows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..runtime import (SyncCounts, create_temp, epoch_us, has_column, load_sql, programs_fingerprint,
                       read_progress_many, sync_table, transaction, write_progress_many)
from .context import SQL, changed_orders, identity_orders_current, prepare_referral_context

PROGRESS_ORDERS = "analytics.orders -> referral_attribution"
PROGRESS_EVENTS = "analytics.referral_events -> referral_attribution"
PROGRESS_AS_OF = "as_of -> referral_attribution"
PROGRESS_PROGRAMS = "programs -> referral_attribution"
PROGRESS_CUSTOMERS = "analytics.customers -> referral_attribution"
# version of the stage's own bookkeeping (ops.purchase_multi_ids...): a warehouse written by an
# older version gets one full run first
PROGRESS_LAYOUT = "layout -> referral_attribution"
LAYOUT = 2


@dataclass
class AttributionResult:
    mode: str                  # full | incremental
    evaluated_orders: int      # orders (re-)evaluated by this run
    candidates: int
    attributed: int
    by_method: dict[str, int] = field(default_factory=dict)
    changes: SyncCounts = field(default_factory=SyncCounts)

    def as_metadata(self) -> dict:
        return {"mode": self.mode, "evaluated_orders": self.evaluated_orders, "candidates": self.candidates,
                "attributed_orders": self.attributed, "by_method": self.by_method, **self.changes.as_metadata()}


# the columns of analytics.orders the stage reads (ref_orders; attr_changed_orders also has load_seq)
ORDER_COLUMNS = ["order_key", "source_order_id", "order_number", "customer_key", "market_id", "placed_at", "status",
                 "currency", "gross_amount", "discount_amount", "refunded_amount", "net_amount", "coupon_codes",
                 "referral_code", "ip_address"]


# TEMP attr_present: the attributed orders that are still orders (attribution_signals_delta.sql).
# By key: a look-up of the 76k keys in the 5M order keys; by hash: in identity.order_state's 64-bit
# hashes, when it holds exactly the staged orders (context.identity_orders_current).
PRESENT_BY_KEY = "SELECT order_key FROM order_ids WHERE order_key IN (SELECT order_key FROM analytics.referral_attribution)"
PRESENT_BY_HASH = ("SELECT order_key FROM analytics.referral_attribution "
                   "WHERE hash(order_key) IN (SELECT order_hash FROM identity.order_state)")


def referral_orders_sql(kinds: set[str]) -> str:
    """``referral_orders.sql`` with only the branches whose signal kinds occur this run."""
    text = load_sql(SQL, "referral_orders.sql")
    parts = re.split(r"^-- (branch|final): ?([^\n]*)\n", text, flags=re.M)
    branches, final = [], None
    for i in range(1, len(parts), 3):
        marker, label, body = parts[i], parts[i + 1], parts[i + 2].strip()
        if marker == "final":
            final = body
        elif kinds & set(label.split(",")):
            branches.append(body)
    hits = " UNION ALL ".join(f"({b})" for b in branches) or "SELECT {columns} FROM analytics.orders WHERE FALSE"
    return final.replace("{hits}", hits).replace("{columns}", ", ".join(ORDER_COLUMNS))


def _changed_customers(con: duckdb.DuckDBPyConnection, mark: int | None) -> tuple[bool, int | None]:
    """TEMP ``attr_changed_customers``: customers the identity stage rewrote since ``mark``. Returns
    (enrich every stored row, the new mark); without ``load_seq`` or a mark, every row is enriched."""
    tracked = has_column(con, "analytics.customers", "load_seq")
    if tracked and mark is not None:
        create_temp(con, "attr_changed_customers", "SELECT customer_key FROM analytics.customers WHERE load_seq > $mark",
                    {"mark": mark})
    else:
        create_temp(con, "attr_changed_customers", "SELECT CAST(NULL AS VARCHAR) AS customer_key WHERE FALSE")
    new_mark = con.execute("SELECT coalesce(max(load_seq), 0) FROM analytics.customers").fetchall()[0][0] if tracked else None
    return not (tracked and mark is not None), new_mark


def run_attribution(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime,
                    run_id: str | None = None, rebuild: bool = False) -> AttributionResult:
    with transaction(con):
        prepare_referral_context(con, programs)
        fingerprint = programs_fingerprint(con)
        incremental_ok = has_column(con, "analytics.orders", "load_seq")
        stored = read_progress_many(con, (PROGRESS_ORDERS, PROGRESS_EVENTS, PROGRESS_AS_OF, PROGRESS_PROGRAMS,
                                          PROGRESS_LAYOUT, PROGRESS_CUSTOMERS))
        customers_stored = stored.pop(PROGRESS_CUSTOMERS)
        incremental = (incremental_ok and not rebuild and None not in stored.values()
                       and stored[PROGRESS_PROGRAMS] == fingerprint and stored[PROGRESS_LAYOUT] == LAYOUT)
        events_wm = con.execute("SELECT greatest((SELECT coalesce(max(load_seq), 0) FROM analytics.referral_events), "
                                "(SELECT coalesce(max(load_seq), 0) FROM ops.referral_events_replaced))").fetchall()[0][0]
        if incremental:
            prev_as_of = datetime.fromtimestamp(stored[PROGRESS_AS_OF] / 1_000_000, tz=as_of.tzinfo)
            # the orders above the mark, read once: for the signals and for the next mark
            changed_orders(con, "attr_changed_orders", stored[PROGRESS_ORDERS], [*ORDER_COLUMNS, "load_seq"])
            create_temp(con, "attr_present", PRESENT_BY_HASH if identity_orders_current(con) else PRESENT_BY_KEY)
            create_temp(con, "attr_signals", load_sql(SQL, "attribution_signals_delta.sql"),
                        {"orders_wm": stored[PROGRESS_ORDERS], "events_wm": stored[PROGRESS_EVENTS],
                         "as_of": as_of, "prev_as_of": prev_as_of})
        else:
            create_temp(con, "attr_signals", load_sql(SQL, "attribution_signals_full.sql"))
        enrich_all, customers_mark = _changed_customers(
            con, customers_stored if incremental else None)
        params = {"as_of": as_of, "full": not incremental, "enrich_all": enrich_all}
        kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM attr_signals").fetchall()}
        evaluated = create_temp(con, "ref_orders", referral_orders_sql(kinds), params)
        if create_temp(con, "attr_purchase_rows", load_sql(SQL, "purchase_rows.sql"), params):
            create_temp(con, "attr_purchase_hits", load_sql(SQL, "purchase_hits.sql"), params)
        else:   # (no purchase row names an evaluated order: no lookup in the orders)
            create_temp(con, "attr_purchase_hits", "SELECT CAST(NULL AS VARCHAR) AS event_key, CAST(NULL AS VARCHAR) AS "
                        "order_id, CAST(NULL AS VARCHAR) AS market_id, CAST(NULL AS VARCHAR) AS order_key, "
                        "CAST(NULL AS INTEGER) AS by_number WHERE FALSE")
        _keep_multi_ids(con, incremental)
        candidates = create_temp(con, "attr_candidates", load_sql(SQL, "attribution_candidates.sql"), params)
        create_temp(con, "attr_winners", load_sql(SQL, "attribution_winners.sql"), params)
        create_temp(con, "attr_new", load_sql(SQL, "attribution_rows.sql"), params)
        scope = None if not incremental else (
            "t.order_key IN (SELECT order_key FROM ref_orders) OR t.order_key IN (SELECT order_key FROM attr_winners) "
            "OR t.order_key IN (SELECT value FROM attr_signals WHERE kind IN ('order_key', 'changed_order'))")
        changes = sync_table(con, "analytics.referral_attribution", "attr_new", ["order_key"],
                             ignore=["updated_at"], preserve=["reward_key", "no_reward_reason", "attributed_at"],
                             scope=scope)
        by_method = dict(con.execute("SELECT attribution_method, count(*) FROM analytics.referral_attribution "
                                     "GROUP BY 1 ORDER BY 1").fetchall())
        attributed = sum(by_method.values())
        if incremental_ok:
            # rows added since the stored mark are all this run has read (zone maps keep it cheap)
            mark = stored[PROGRESS_ORDERS] if incremental else -1
            above = "attr_changed_orders" if incremental else "analytics.orders"
            orders_wm = con.execute(f"SELECT coalesce(max(load_seq), ?) FROM {above} WHERE load_seq > ?",
                                    [max(mark, 0), mark]).fetchall()[0][0]
            write_progress_many(con, {PROGRESS_ORDERS: orders_wm, PROGRESS_EVENTS: events_wm,
                                      PROGRESS_AS_OF: epoch_us(as_of), PROGRESS_PROGRAMS: fingerprint,
                                      PROGRESS_LAYOUT: LAYOUT,
                                      **({PROGRESS_CUSTOMERS: customers_mark} if customers_mark is not None else {})})
        # old event versions are needed only until this stage has seen them
        con.execute("DELETE FROM ops.referral_events_replaced WHERE load_seq <= ?", [events_wm])
        for table in ("attr_signals", "ref_orders", "attr_purchase_rows", "attr_purchase_hits", "attr_candidates", "attr_winners", "attr_new",
                      "attr_changed_customers"):
            con.execute(f"DROP TABLE {table}")
        con.execute("DROP TABLE IF EXISTS attr_changed_orders")
        con.execute("DROP TABLE IF EXISTS attr_present")
    return AttributionResult("incremental" if incremental else "full", evaluated, candidates, attributed, by_method, changes)


def _keep_multi_ids(con: duckdb.DuckDBPyConnection, incremental: bool) -> None:
    """``ops.purchase_multi_ids`` for the purchase ids evaluated by this run (all on a full run)."""
    if incremental:
        con.execute("DELETE FROM ops.purchase_multi_ids WHERE order_id IN (SELECT value FROM attr_signals WHERE kind = 'id')")
    else:
        con.execute("DELETE FROM ops.purchase_multi_ids")
    con.execute("""INSERT INTO ops.purchase_multi_ids
                   SELECT order_id, market_id FROM attr_purchase_hits
                   GROUP BY order_id, market_id HAVING count(DISTINCT order_key) > 1""")
