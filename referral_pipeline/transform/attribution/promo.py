"""``audit.promo_code_issues``: problems of the codes Friendbuy distributed (product §5.1).

Every step of the validation is per code, so a run re-validates only the codes whose inputs
changed: per distributed code a digest of the Friendbuy rows that distributed it and the platform
coupons with its text (``promo_inputs.sql``), compared with the digests the last run kept in
``ops.promo_code_inputs``. The first run, ``rebuild``, changed programs or a changed name pattern
validate every code. Results are merged: a problem that is no longer true disappears, one that
stays keeps its ``detected_at`` (first seen)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import hashlib

import duckdb

from ...config.programs import Programs
from ..runtime import Progress, SyncCounts, create_temp, load_sql, sync_table, transaction
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
    mode: str = "full"            # full | incremental
    evaluated_codes: int = 0      # codes validated by this run

    def as_metadata(self) -> dict:
        return {"distributed_codes": self.distributed_codes, "issues": self.issues, "by_problem": self.by_problem,
                "mode": self.mode, "evaluated_codes": self.evaluated_codes, **self.changes.as_metadata()}


PROMO_STAGE = "promo_code_issues"


def _pattern_mark(pattern: str) -> int:
    return int(hashlib.sha256(pattern.encode()).hexdigest()[:15], 16)


def run_promo_codes(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime,
                    referral_name_pattern: str = REFERRAL_NAME_PATTERN, rebuild: bool = False) -> PromoResult:
    with transaction(con):
        prepare_referral_context(con, programs)
        progress = Progress(con, PROMO_STAGE, ["name_pattern"])
        incremental = not rebuild and progress.ok() and progress.mark("name_pattern") == _pattern_mark(referral_name_pattern)
        codes = create_temp(con, "promo_inputs", load_sql(SQL, "promo_inputs.sql"))
        if incremental:
            evaluated = create_temp(con, "promo_scope", load_sql(SQL, "promo_scope.sql"))
        else:
            create_temp(con, "promo_scope", "SELECT CAST(NULL AS VARCHAR) AS code WHERE FALSE")
            evaluated = codes
        params = {"as_of": as_of, "referral_name_pattern": referral_name_pattern, "full": not incremental}
        create_temp(con, "promo_new", load_sql(SQL, "promo_codes.sql"), params)
        changes = sync_table(con, "audit.promo_code_issues", "promo_new", ["code", "market_id", "problem"],
                             ignore=["updated_at"], preserve=["detected_at"],
                             scope="t.code IN (SELECT code FROM promo_scope)" if incremental else None)
        if not incremental or evaluated:
            con.execute("DELETE FROM ops.promo_code_inputs")
            con.execute("INSERT INTO ops.promo_code_inputs SELECT code, digest, rows FROM promo_inputs")
        progress.save(as_of, name_pattern=_pattern_mark(referral_name_pattern))
        issues = con.execute("SELECT count(*) FROM audit.promo_code_issues").fetchall()[0][0]
        by_problem = dict(con.execute("SELECT problem, count(*) FROM audit.promo_code_issues GROUP BY 1 ORDER BY 1").fetchall())
        for table in ("promo_inputs", "promo_scope", "promo_new"):
            con.execute(f"DROP TABLE {table}")
    return PromoResult(codes, issues, by_problem, changes, "incremental" if incremental else "full", evaluated)
