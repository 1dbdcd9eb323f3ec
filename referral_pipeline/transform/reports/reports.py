"""Reports recomputed in full on every run (they aggregate the referral activity, which is small)
and merged into their tables touching only rows that changed."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..attribution.context import prepare_referral_context
from ..rewards.fraud import ensure_rewards_schema
from ..runtime import SyncCounts, create_temp, digest, load_sql, setup_once, sync_table, transaction

SQL = f"{__package__}.sql"
REPORT_INPUTS = ("analytics.referral_attribution", "analytics.referral_events", "analytics.rewards",
                 "analytics.reward_ledger")


def ensure_reports_schema(con: duckdb.DuckDBPyConnection) -> None:
    ensure_rewards_schema(con)   # the reports read the rewards tables: empty until rewards run
    schema = load_sql(SQL, "schema.sql")
    setup_once(con, "reports_schema", digest(schema), lambda: con.execute(schema))


@dataclass
class ReportResult:
    rows: int
    changes: SyncCounts = field(default_factory=SyncCounts)
    breakdown: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict:
        return {"rows": self.rows, "breakdown": self.breakdown, **self.changes.as_metadata()}


def run_funnel(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime) -> ReportResult:
    ensure_reports_schema(con)
    with transaction(con):
        prepare_referral_context(con, programs)
        rows = create_temp(con, "funnel_new", load_sql(SQL, "funnel.sql"), {"as_of": as_of})
        changes = sync_table(con, "analytics.referral_funnel_daily", "funnel_new",
                             ["day", "market_id", "campaign_id", "channel"], ignore=["updated_at"])
        breakdown = dict(con.execute("SELECT market_id, sum(conversions)::BIGINT FROM funnel_new GROUP BY 1 ORDER BY 1").fetchall())
        con.execute("DROP TABLE funnel_new")
    return ReportResult(rows, changes, breakdown)


def run_reconciliation(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime) -> ReportResult:
    ensure_reports_schema(con)
    with transaction(con):
        prepare_referral_context(con, programs)
        rows = create_temp(con, "recon_new", load_sql(SQL, "reconciliation.sql"), {"as_of": as_of})
        changes = sync_table(con, "analytics.reward_reconciliation", "recon_new",
                             ["mismatch", "reward_key", "friendbuy_event_key"], ignore=["updated_at"],
                             preserve=["detected_at"])
        breakdown = dict(con.execute("SELECT mismatch, count(*) FROM recon_new GROUP BY 1 ORDER BY 1").fetchall())
        con.execute("DROP TABLE recon_new")
    return ReportResult(rows, changes, breakdown)
