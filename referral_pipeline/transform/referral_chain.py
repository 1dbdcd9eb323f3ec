"""Runs the referral stages in dependency order on one connection (what the Dagster assets do one
by one): resolved Friendbuy events, attribution, promo codes, fraud flags, rewards and ledger,
funnel and reconciliation. Used by tests, benchmarks and scripts."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from ..config.programs import Programs
from .attribution import run_attribution, run_promo_codes, run_referral_events
from .reports import run_funnel, run_reconciliation
from .rewards import run_fraud, run_rewards


def run_referral_chain(con: duckdb.DuckDBPyConnection, programs: Programs, as_of: datetime,
                       run_id: str | None = None) -> dict[str, Any]:
    return {
        "referral_events": run_referral_events(con, programs, as_of),
        "referral_attribution": run_attribution(con, programs, as_of, run_id),
        "promo_code_issues": run_promo_codes(con, programs, as_of),
        "fraud_flags": run_fraud(con, programs, as_of, run_id),
        "rewards": run_rewards(con, programs, as_of, run_id),
        "referral_funnel_daily": run_funnel(con, programs, as_of),
        "reward_reconciliation": run_reconciliation(con, programs, as_of),
    }
