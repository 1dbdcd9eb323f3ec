"""``audit.fraud_flags``: the six fraud rules of product §6 on every referral sign-up and every
attributed order.

Each rule is one SQL file returning hits (rule, severity, subject, parties, evidence JSON). A hit
becomes a flag with ``flag_id`` = hash of (rule, subject_type, subject_key); a flag is inserted
once, never updated or deleted, so a re-run adds nothing.

Incremental after the first run: since flags are never removed, only a new hit matters, and the
rules run only on the subjects in a partition that changed (``fraud_scope.sql``: advocates, IPs,
canonical emails, customers touched by new or rewritten subjects, events, orders or customers since
the stored watermarks). The first run, ``rebuild``, changed programs, or inputs without
``load_seq`` evaluate every subject. The sign-ups' canonical emails are kept in
``ops.fraud_signup_emails`` and computed only for new or rewritten sign-ups.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..attribution.context import changed_orders, orders_where, prepare_referral_context
from ..runtime import (Progress, create_temp, digest, has_column, load_sql, read_progress_many, run_sql, setup_once,
                       transaction)

SQL = f"{__package__}.sql"
# the version of ref_email_canonical that ops.fraud_signup_emails was computed with
CANONICAL_DIGEST = digest(load_sql(f"{__package__.rsplit('.', 1)[0]}.attribution.sql", "macros.sql"))
# rule -> (severity, SQL file); the order is the order of product §6
RULES = {
    "SELF_REFERRAL": ("reject", "fraud_self_referral.sql"),
    "SAME_IP_AS_ADVOCATE": ("hold", "fraud_same_ip.sql"),
    "DUPLICATE_IDENTITY": ("hold", "fraud_duplicate_identity.sql"),
    "VELOCITY_ADVOCATE": ("hold", "fraud_velocity_advocate.sql"),
    "VELOCITY_IP": ("hold", "fraud_velocity_ip.sql"),
    "COUPON_REUSE": ("hold", "fraud_coupon_reuse.sql"),
}
FRAUD_INPUTS = ("analytics.referral_attribution", "analytics.referral_events", "analytics.orders", "analytics.customers")


def ensure_rewards_schema(con: duckdb.DuckDBPyConnection) -> None:
    schema = load_sql(SQL, "schema.sql")
    setup_once(con, "rewards_schema", digest(schema), lambda: con.execute(schema))


@dataclass
class FraudResult:
    subjects: int
    hits: int
    new_flags: int
    new_by_rule: dict[str, int] = field(default_factory=dict)
    total_by_rule: dict[str, int] = field(default_factory=dict)
    mode: str = "full"            # full | incremental

    def as_metadata(self) -> dict:
        return {"mode": self.mode, "subjects": self.subjects, "hits": self.hits, "new_flags": self.new_flags,
                "new_by_rule": self.new_by_rule, "flags_by_rule": self.total_by_rule}


FRAUD_STAGE = "fraud_flags"
MARKS = {"attribution": "analytics.referral_attribution", "events": "analytics.referral_events",
         "customers": "analytics.customers", "orders": "analytics.orders"}


def _marks(con: duckdb.DuckDBPyConnection, progress: Progress, incremental: bool) -> dict[str, int]:
    """The current high-water ``load_seq`` of every input (rows above the stored mark only: zone maps
    keep it cheap on the large orders)."""
    out = {}
    for name, table in MARKS.items():
        mark = progress.mark(name) if incremental else -1
        # (the orders above the mark are read once, into fraud_changed_orders: the view joins the customer map)
        source = "fraud_changed_orders" if name == "orders" and incremental else table
        out[name] = con.execute(f"SELECT coalesce(max(load_seq), ?) FROM {source} WHERE load_seq > ?",
                                [max(mark, 0), mark]).fetchall()[0][0]
    return out


# The load_seq range (FROM, TO] of analytics.referral_attribution rows the rewards stage's last run
# rewrote (reward_key and no_reward_reason only; rewards.py writes it): this stage need not
# re-evaluate them.
REWARD_KEYS_FROM = "reward_keys_from -> referral_attribution"
REWARD_KEYS_TO = "reward_keys_to -> referral_attribution"


def _reward_key_rewrites(con: duckdb.DuckDBPyConnection, attr_mark: int) -> tuple[int, int]:
    """The load_seq range (from, to] of the analytics.referral_attribution rows that the rewards stage
    last rewrote, setting only reward_key and no_reward_reason (which no rule reads), when this stage
    had seen every row as it was before that rewrite (``attr_mark`` >= from); else an empty range.
    A later change of such a row by the attribution stage gives it a load_seq above ``to``."""
    stored = read_progress_many(con, [REWARD_KEYS_FROM, REWARD_KEYS_TO])
    seq_from, seq_to = stored[REWARD_KEYS_FROM], stored[REWARD_KEYS_TO]
    if seq_from is None or seq_to is None or attr_mark < seq_from:
        return 0, 0
    return seq_from, seq_to


IP_ORDER_COLUMNS = ["market_id", "customer_key", "ip_address", "order_key", "placed_at"]


def _advocate_ip_orders(con: duckdb.DuckDBPyConnection, incremental: bool, as_of: datetime) -> str:
    """``fraud_ip_orders``, the orders SAME_IP_AS_ADVOCATE may match (``fraud_same_ip.sql``): on an
    incremental run a TEMP table of the subjects' advocates' orders placed from a subject's IP (the
    rule joins on advocate and IP, so no other order can match; a few rows instead of a join of every
    order with the customer map); on a full run a view of all orders. Returns which of the two (TABLE, VIEW)."""
    if not incremental:
        con.execute(f"CREATE OR REPLACE TEMP VIEW fraud_ip_orders AS SELECT {', '.join(IP_ORDER_COLUMNS)} FROM analytics.orders")
        return "VIEW"
    orders_where(con, "fraud_ip_orders", "ip_address IN (SELECT ip FROM fraud_subjects WHERE advocate_key IS NOT NULL) "
                 "AND placed_at <= $as_of", IP_ORDER_COLUMNS, {"as_of": as_of},
                 customers="SELECT advocate_key FROM fraud_subjects WHERE ip IS NOT NULL")
    return "TABLE"


def _steps(text: str) -> dict[str, str]:
    """The statements of a SQL file split at its ``-- step: <name>`` lines, by name."""
    parts = re.split(r"^-- step: ([a-z_]+)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}


SIGNUP_EMAIL_STEPS = _steps(load_sql(SQL, "fraud_signup_emails.sql"))


def _sync_signup_emails(con: duckdb.DuckDBPyConnection) -> None:
    """``ops.fraud_signup_emails`` up to date: the sign-ups written since its highest ``load_seq``
    (a few on an incremental run, every one on the first) get their canonical emails computed; rows
    of events that are no longer sign-ups are pruned only when the table has more rows than there
    are sign-ups. ``fraud_subjects.sql`` checks every row it uses against the event's emails, so the
    flags never depend on this table being complete."""
    steps, params = SIGNUP_EMAIL_STEPS, {"macro_digest": CANONICAL_DIGEST}
    run_sql(con, steps["other_macro"], params)
    params["mark"] = con.execute("SELECT coalesce(max(load_seq), -1) FROM ops.fraud_signup_emails").fetchall()[0][0]
    run_sql(con, steps["rewritten"], params)
    run_sql(con, steps["new"], params)
    stored, signups = con.execute(
        "SELECT (SELECT count(*) FROM ops.fraud_signup_emails), "
        "(SELECT count(*) FROM analytics.referral_events WHERE kind = 'signup')").fetchall()[0]
    if stored > signups:
        run_sql(con, steps["prune"], params)


def run_fraud(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime, run_id: str | None = None,
              rebuild: bool = False) -> FraudResult:
    """Evaluate the rules (on the changed partitions after the first run); insert the hits that are
    not flags yet."""
    ensure_rewards_schema(con)
    with transaction(con):
        prepare_referral_context(con, programs)
        progress = Progress(con, FRAUD_STAGE, MARKS)
        tracked = all(has_column(con, t, "load_seq") for t in MARKS.values())
        incremental = tracked and not rebuild and progress.ok()
        params = {"as_of": as_of, "run_id": run_id, "full": not incremental}
        if incremental:
            skip_from, skip_to = _reward_key_rewrites(con, progress.mark("attribution"))
            changed_orders(con, "fraud_changed_orders", progress.mark("orders"), ["customer_key", "ip_address", "load_seq"])
            create_temp(con, "fraud_scope", load_sql(SQL, "fraud_scope.sql"), {
                **params, "prev_as_of": progress.prev_as_of(as_of),
                **{f"{name}_wm": progress.mark(name) for name in ("events", "customers", "orders")},
                "attr_wm": progress.mark("attribution"), "skip_from": skip_from, "skip_to": skip_to})
        else:
            create_temp(con, "fraud_scope", "SELECT CAST(NULL AS VARCHAR) AS kind, CAST(NULL AS VARCHAR) AS value, "
                        "CAST(NULL AS TIMESTAMPTZ) AS ts WHERE FALSE")
        params["macro_digest"] = CANONICAL_DIGEST
        if has_column(con, "analytics.referral_events", "load_seq"):
            _sync_signup_emails(con)
        subjects = create_temp(con, "fraud_subjects", load_sql(SQL, "fraud_subjects.sql"), params)
        ip_orders = _advocate_ip_orders(con, incremental, as_of)
        hits_sql = " UNION ALL ".join(f"SELECT * FROM ({load_sql(SQL, file)})" for _, file in RULES.values())
        hits = create_temp(con, "fraud_hits", hits_sql, params)
        new_by_rule = dict(run_sql(con, """
            SELECT rule, count(*) FROM fraud_hits h
            WHERE ref_hash_key('flg_', rule || '|' || subject_type || '|' || subject_key)
                  NOT IN (SELECT flag_id FROM audit.fraud_flags)
            GROUP BY rule ORDER BY rule""").fetchall())
        run_sql(con, """
            INSERT INTO audit.fraud_flags (flag_id, rule, severity, subject_type, subject_key, advocate_customer_key,
                                           friend_customer_key, evidence, detected_at, run_id, market_id, campaign_id,
                                           load_seq)
            SELECT flag_id, rule, severity, subject_type, subject_key, advocate_key, friend_key, CAST(evidence AS JSON),
                   CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR), market_id, campaign_id,
                   nextval('analytics.write_seq')
            FROM (SELECT ref_hash_key('flg_', rule || '|' || subject_type || '|' || subject_key) AS flag_id, * FROM fraud_hits)
            WHERE flag_id NOT IN (SELECT flag_id FROM audit.fraud_flags)
            QUALIFY row_number() OVER (PARTITION BY flag_id ORDER BY CAST(evidence AS VARCHAR)) = 1""", params)
        total = dict(con.execute("SELECT rule, count(*) FROM audit.fraud_flags GROUP BY 1 ORDER BY 1").fetchall())
        if tracked:
            progress.save(as_of, **_marks(con, progress, incremental))
        for table in ("fraud_hits", "fraud_subjects", "fraud_scope"):
            con.execute(f"DROP TABLE {table}")
        con.execute("DROP TABLE IF EXISTS fraud_changed_orders")
        con.execute(f"DROP {ip_orders} fraud_ip_orders")
    return FraudResult(subjects, hits, sum(new_by_rule.values()), new_by_rule, total,
                       "incremental" if incremental else "full")
