"""``analytics.rewards`` (current state), ``analytics.reward_ledger`` (append-only history) and
``analytics.referral_attribution.reward_key`` (product §7).

Every run computes the status each reward should have now (``rewards_target.sql``), from the
stored state, the attribution, the orders, the fraud flags, the reviewers' decisions read back from
Salesforce and Friendbuy's distributed rewards, all against the run's ``as_of``. Then, in one
transaction: one ledger row per reward whose status changed (``occurred_at`` = as_of, the run id),
the changed reward rows rewritten, and ``reward_key`` / ``no_reward_reason`` set on the
attribution rows that need it. With no input change nothing is written.

Narrowed after the first run while ``as_of`` and the programs stay the same (every status depends
on ``as_of``): only the rewards whose inputs changed since the last run, with every reward of their
advocate's month for the cap (``rewards_scope.sql``), are evaluated and stamped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ...warehouse.landing import raw_table
from ..attribution.context import prepare_referral_context
from ..runtime import (Progress, SyncCounts, create_temp, epoch_us, has_column, load_sql, run_sql, sync_table,
                       table_exists, transaction, write_progress_many)
from .fraud import REWARD_KEYS_FROM, REWARD_KEYS_TO, RULES, SQL, ensure_rewards_schema

REWARDS_INPUTS = ("analytics.referral_attribution", "analytics.referral_events", "audit.fraud_flags")


@dataclass
class RewardsResult:
    rewards: int
    ledger_rows: int
    by_status: dict[str, int] = field(default_factory=dict)
    changes: SyncCounts = field(default_factory=SyncCounts)
    attribution_rows_updated: int = 0
    mode: str = "full"            # full | narrowed (only the rewards whose inputs changed)

    def as_metadata(self) -> dict:
        return {"rewards": self.rewards, "ledger_rows_appended": self.ledger_rows, "by_status": self.by_status,
                "attribution_rows_updated": self.attribution_rows_updated, "mode": self.mode,
                **self.changes.as_metadata()}


def review_tables(con: duckdb.DuckDBPyConnection, programs: Programs) -> list[str]:
    """The landed ``Referral_Reward__c`` tables of every Salesforce instance that exist yet."""
    tables = [raw_table(s.id, "referral_reward") for s in programs.sources if s.type == "salesforce"]
    return [t for t in tables if table_exists(con, t)]


def _load_reviews(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime) -> int:
    tables = review_tables(con, programs)
    if tables:
        union = " UNION ALL ".join(f"SELECT payload, stamp, is_deleted FROM {t}" for t in tables)
    else:
        union = "SELECT CAST(NULL AS VARCHAR) AS payload, CAST(NULL AS TIMESTAMPTZ) AS stamp, FALSE AS is_deleted WHERE FALSE"
    con.execute(f"CREATE OR REPLACE TEMP VIEW sf_reward_records AS {union}")
    return create_temp(con, "reviews", load_sql(SQL, "reviews.sql"), {"as_of": as_of})


def _max_attribution_seq(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(load_seq), 0) FROM analytics.referral_attribution").fetchall()[0][0]


REWARDS_STAGE = "rewards"
# the inputs whose rows above a mark a narrowed run reads (rewards_scope.sql)
MARKS = {"attribution": "analytics.referral_attribution", "flags": "audit.fraud_flags",
         "events": "analytics.referral_events"}


def _narrowed(con: duckdb.DuckDBPyConnection, progress: Progress, as_of: datetime, rebuild: bool) -> bool:
    """A run may evaluate only the rewards whose inputs changed (``rewards_scope.sql``) when the last
    run's marks are stored, the programs and ``as_of`` are the same (every status depends on
    ``as_of``: a new one re-evaluates every reward) and the inputs carry ``load_seq``."""
    return (not rebuild and progress.ok() and progress.stored["as_of"] == epoch_us(as_of)
            and all(has_column(con, table, "load_seq") for table in MARKS.values()))


def run_rewards(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime, run_id: str | None = None,
                rebuild: bool = False) -> RewardsResult:
    """``rebuild``: evaluate every reward even when the inputs say which can change."""
    ensure_rewards_schema(con)
    with transaction(con):
        prepare_referral_context(con, programs)
        progress = Progress(con, REWARDS_STAGE, MARKS)
        narrowed = _narrowed(con, progress, as_of, rebuild)
        params = {"as_of": as_of, "run_id": run_id, "rule_order": list(RULES), "full": not narrowed}
        _load_reviews(con, programs, as_of)
        if narrowed:
            create_temp(con, "rw_scope", load_sql(SQL, "rewards_scope.sql"),
                        {f"{name}_wm": progress.mark(name) for name in MARKS})
        else:
            create_temp(con, "rw_scope", "SELECT CAST(NULL AS VARCHAR) AS campaign_id, "
                                         "CAST(NULL AS VARCHAR) AS friend_customer_key WHERE FALSE")
        create_temp(con, "rw_target", load_sql(SQL, "rewards_target.sql"), params)
        ledger_rows = run_sql(con, """
            INSERT INTO analytics.reward_ledger (reward_key, seq, from_status, to_status, reason, occurred_at, run_id,
                                                 load_seq)
            SELECT t.reward_key, coalesce(l.last_seq, 0) + 1, t.prev_status, t.status, t.reason,
                   CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR), nextval('analytics.write_seq')
            FROM rw_target t
            LEFT JOIN (SELECT reward_key, max(seq) AS last_seq FROM analytics.reward_ledger
                       WHERE reward_key IN (SELECT reward_key FROM rw_target WHERE status IS DISTINCT FROM prev_status)
                       GROUP BY reward_key) l ON l.reward_key = t.reward_key
            WHERE t.status IS DISTINCT FROM t.prev_status""", params).fetchall()[0][0]
        changes = sync_table(con, "analytics.rewards", "rw_target", ["reward_key"], ignore=["updated_at"],
                             preserve=["created_at"], delete_missing=False)
        seq_before = _max_attribution_seq(con)
        attribution_rows = run_sql(con, """
            UPDATE analytics.referral_attribution a
            SET reward_key = n.reward_key, no_reward_reason = n.no_reward_reason, load_seq = nextval('analytics.write_seq')
            FROM (SELECT order_key, ref_hash_key('rwd_', campaign_id || '|' || friend_customer_key) AS reward_key,
                         CASE WHEN row_number() OVER (PARTITION BY campaign_id, friend_customer_key
                                                      ORDER BY placed_at, order_key) > 1
                              THEN 'NOT_FIRST_REFERRED_ORDER' END AS no_reward_reason
                  FROM analytics.referral_attribution r
                  WHERE $full OR EXISTS (SELECT 1 FROM rw_scope s WHERE s.campaign_id = r.campaign_id
                                         AND s.friend_customer_key = r.friend_customer_key)) n
            WHERE a.order_key = n.order_key
              AND (a.reward_key IS DISTINCT FROM n.reward_key OR a.no_reward_reason IS DISTINCT FROM n.no_reward_reason)
            """, params).fetchall()[0][0]
        write_progress_many(con, {REWARD_KEYS_FROM: seq_before, REWARD_KEYS_TO: _max_attribution_seq(con)})
        progress.save(as_of, **{name: con.execute(f"SELECT coalesce(max(load_seq), 0) FROM {table}").fetchall()[0][0]
                                for name, table in MARKS.items()})
        by_status = dict(con.execute("SELECT status, count(*) FROM analytics.rewards GROUP BY 1 ORDER BY 1").fetchall())
        total = con.execute("SELECT count(*) FROM analytics.rewards").fetchall()[0][0]
        con.execute("DROP TABLE rw_target")
        con.execute("DROP TABLE rw_scope")
    return RewardsResult(total, ledger_rows, by_status, changes, attribution_rows, "narrowed" if narrowed else "full")
