"""``analytics.referral_attribution``: which advocate each order is attributed to (product §5).

Incremental where it matters: the orders are the one large input, so a run re-evaluates only the
orders whose attribution may have changed (``attribution_signals_delta.sql``): orders whose row
changed (``analytics.orders.load_seq`` above the stored watermark; the identity stage's view
carries staging's ``load_seq``) or crossed the ``as_of`` cut, and the orders reachable from the
Friendbuy events that changed (``analytics.referral_events.load_seq``) by coupon code, referral
code, purchase id or signed-up customer. Every other attributed order keeps its stored winner;
the enrichment (last click, last sign-up, channel, canonical emails, ``is_new_customer``) is
recomputed for all attributed orders, which are few. A full run (first run, ``rebuild``, changed
programs, or an ``analytics.orders`` without ``load_seq``) evaluates every order with a referral
signal. Both end in a merge that touches only the rows that changed; ``reward_key`` and
``no_reward_reason`` belong to the rewards stage and are kept on rewritten rows.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..runtime import (SyncCounts, create_temp, has_column, load_sql, read_progress, sync_table, transaction,
                       write_progress)
from .context import SQL, prepare_referral_context

PROGRESS_ORDERS = "analytics.orders -> referral_attribution"
PROGRESS_EVENTS = "analytics.referral_events -> referral_attribution"
PROGRESS_AS_OF = "as_of -> referral_attribution"
PROGRESS_PROGRAMS = "programs -> referral_attribution"


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


def programs_fingerprint(con: duckdb.DuckDBPyConnection) -> int:
    """A 60-bit fingerprint of the program rules and market sources (TEMP tables) the stage read."""
    rows = con.execute("SELECT * FROM program_rules ORDER BY ALL").fetchall() + \
        con.execute("SELECT * FROM market_sources ORDER BY ALL").fetchall()
    return int(hashlib.sha256(repr(rows).encode()).hexdigest()[:15], 16)


def _epoch_us(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def run_attribution(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime,
                    run_id: str | None = None, rebuild: bool = False) -> AttributionResult:
    with transaction(con):
        prepare_referral_context(con, programs)
        fingerprint = programs_fingerprint(con)
        incremental_ok = has_column(con, "analytics.orders", "load_seq")
        stored = {k: read_progress(con, k) for k in (PROGRESS_ORDERS, PROGRESS_EVENTS, PROGRESS_AS_OF, PROGRESS_PROGRAMS)}
        incremental = (incremental_ok and not rebuild and None not in stored.values()
                       and stored[PROGRESS_PROGRAMS] == fingerprint)
        events_wm = con.execute("SELECT greatest((SELECT coalesce(max(load_seq), 0) FROM analytics.referral_events), "
                                "(SELECT coalesce(max(load_seq), 0) FROM ops.referral_events_replaced))").fetchall()[0][0]
        if incremental:
            prev_as_of = datetime.fromtimestamp(stored[PROGRESS_AS_OF] / 1_000_000, tz=as_of.tzinfo)
            create_temp(con, "attr_signals", load_sql(SQL, "attribution_signals_delta.sql"),
                        {"orders_wm": stored[PROGRESS_ORDERS], "events_wm": stored[PROGRESS_EVENTS],
                         "as_of": as_of, "prev_as_of": prev_as_of})
        else:
            create_temp(con, "attr_signals", load_sql(SQL, "attribution_signals_full.sql"))
        params = {"as_of": as_of, "full": not incremental}
        evaluated = create_temp(con, "ref_orders", load_sql(SQL, "referral_orders.sql"), params)
        candidates = create_temp(con, "attr_candidates", load_sql(SQL, "attribution_candidates.sql"), params)
        create_temp(con, "attr_winners", load_sql(SQL, "attribution_winners.sql"), params)
        attributed = create_temp(con, "attr_new", load_sql(SQL, "attribution_rows.sql"), params)
        changes = sync_table(con, "analytics.referral_attribution", "attr_new", ["order_key"],
                             ignore=["updated_at"], preserve=["reward_key", "no_reward_reason", "attributed_at"])
        by_method = dict(con.execute("SELECT attribution_method, count(*) FROM attr_new GROUP BY 1 ORDER BY 1").fetchall())
        if incremental_ok:
            # rows added since the stored mark are all this run has read (zone maps keep it cheap)
            mark = stored[PROGRESS_ORDERS] if incremental else -1
            orders_wm = con.execute("SELECT coalesce(max(load_seq), ?) FROM analytics.orders WHERE load_seq > ?",
                                    [max(mark, 0), mark]).fetchall()[0][0]
            write_progress(con, PROGRESS_ORDERS, orders_wm)
            write_progress(con, PROGRESS_EVENTS, events_wm)
            write_progress(con, PROGRESS_AS_OF, _epoch_us(as_of))
            write_progress(con, PROGRESS_PROGRAMS, fingerprint)
        # old event versions are needed only until this stage has seen them
        con.execute("DELETE FROM ops.referral_events_replaced WHERE load_seq <= ?", [events_wm])
        for table in ("attr_signals", "ref_orders", "attr_candidates", "attr_winners", "attr_new"):
            con.execute(f"DROP TABLE {table}")
    return AttributionResult("incremental" if incremental else "full", evaluated, candidates, attributed, by_method, changes)
