"""``audit.fraud_flags``: the six fraud rules of product §6 on every referral sign-up and every
attributed order.

Each rule is one SQL file returning hits (rule, severity, subject, parties, evidence JSON). A hit
becomes a flag with ``flag_id`` = hash of (rule, subject_type, subject_key); a flag is inserted
once, never updated or deleted, so a re-run adds nothing. All rules are evaluated in full on every
run: the subjects are the referral activity (sign-ups and attributed orders), not all orders.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..attribution.context import prepare_referral_context
from ..runtime import create_temp, load_sql, run_sql, transaction

SQL = f"{__package__}.sql"
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
    con.execute(load_sql(SQL, "schema.sql"))


@dataclass
class FraudResult:
    subjects: int
    hits: int
    new_flags: int
    new_by_rule: dict[str, int] = field(default_factory=dict)
    total_by_rule: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict:
        return {"subjects": self.subjects, "hits": self.hits, "new_flags": self.new_flags,
                "new_by_rule": self.new_by_rule, "flags_by_rule": self.total_by_rule}


def run_fraud(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime, run_id: str | None = None) -> FraudResult:
    """Evaluate every rule; insert the hits that are not flags yet."""
    ensure_rewards_schema(con)
    params = {"as_of": as_of, "run_id": run_id}
    with transaction(con):
        prepare_referral_context(con, programs)
        subjects = create_temp(con, "fraud_subjects", load_sql(SQL, "fraud_subjects.sql"), params)
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
        con.execute("DROP TABLE fraud_hits")
    return FraudResult(subjects, hits, sum(new_by_rule.values()), new_by_rule, total)
