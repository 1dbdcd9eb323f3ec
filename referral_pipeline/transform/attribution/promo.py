"""``audit.promo_code_issues``: problems of the codes Friendbuy distributed (product §5.1).

Recomputed in full on every run (the distributed codes are few) and merged: a problem that is no
longer true disappears, one that stays keeps its ``detected_at`` (first seen)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...config.programs import Programs
from ..runtime import SyncCounts, create_temp, load_sql, sync_table, transaction
from .context import SQL, prepare_referral_context

# A platform code whose name matches none of these words belongs to a non-referral promotion
# (goodwill, seasonal sale...) when Friendbuy also distributed the code: a collision.
REFERRAL_NAME_PATTERN = r"(?i)refer|friend|advocate|fbuy|invite"


@dataclass
class PromoResult:
    distributed_codes: int
    issues: int
    by_problem: dict[str, int] = field(default_factory=dict)
    changes: SyncCounts = field(default_factory=SyncCounts)

    def as_metadata(self) -> dict:
        return {"distributed_codes": self.distributed_codes, "issues": self.issues, "by_problem": self.by_problem,
                **self.changes.as_metadata()}


def run_promo_codes(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime,
                    referral_name_pattern: str = REFERRAL_NAME_PATTERN) -> PromoResult:
    with transaction(con):
        prepare_referral_context(con, programs)
        issues = create_temp(con, "promo_new", load_sql(SQL, "promo_codes.sql"),
                             {"as_of": as_of, "referral_name_pattern": referral_name_pattern})
        changes = sync_table(con, "audit.promo_code_issues", "promo_new", ["code", "market_id", "problem"],
                             ignore=["updated_at"], preserve=["detected_at"])
        codes = con.execute("SELECT count(DISTINCT coupon_code) FROM fb_events WHERE kind IN "
                            "('friend_incentive', 'advocate_reward') AND coupon_code IS NOT NULL").fetchall()[0][0]
        by_problem = dict(con.execute("SELECT problem, count(*) FROM promo_new GROUP BY 1 ORDER BY 1").fetchall())
        con.execute("DROP TABLE promo_new")
    return PromoResult(codes, issues, by_problem, changes)
