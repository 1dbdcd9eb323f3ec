"""The referral and report assets run by ``dagster.materialize`` on a temporary DuckDB file: the
whole chain, twice (the second run writes nothing), and a skip when the upstream stages never ran."""
from __future__ import annotations

import duckdb
from dagster import AssetKey, materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline.assets.referrals import build_referral_assets
from referral_pipeline.assets.reports import build_report_assets
from referral_pipeline.resources import PipelineSettings

from .referrals_support import World, at, new_db, programs, refresh_first_orders, write_programs

KEYS = [["analytics", "referral_events"], ["analytics", "referral_attribution"], ["audit", "promo_code_issues"],
        ["audit", "fraud_flags"], ["analytics", "rewards"], ["analytics", "reward_ledger"],
        ["analytics", "referral_funnel_daily"], ["analytics", "reward_reconciliation"]]


def assets():
    return [*build_referral_assets(programs()), *build_report_assets()]


def metadata(result, key):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(key)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def resources(tmp_path, db):
    return {"duckdb": DuckDBResource(database=str(db)),
            "settings": PipelineSettings(config_path=str(write_programs(tmp_path / "programs.yaml")),
                                         as_of=at(40).isoformat())}


def test_materialize_the_referral_chain_twice(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    con = new_db(str(db))
    w = World(con)
    for name in ("alice", "f1", "f2"):
        w.customer(name)
    w.share("alice", "ALICE1", at(0), ip="9.9.9.9")
    w.order("sf:f1", "f1", at(1), referral_code="ALICE1")
    w.order("sf:f2", "f2", at(3), referral_code="ALICE1", ip="9.9.9.9")
    w.incentive("alice", "f1", "FRIEND-1", at(0))
    refresh_first_orders(con)
    con.close()

    first = materialize(assets(), resources=resources(tmp_path, db))
    assert first.success
    assert metadata(first, ["analytics", "referral_attribution"])["dagster/row_count"] == 2
    assert metadata(first, ["analytics", "rewards"])["stage"]["by_status"] == {"approved": 1, "on_hold": 1}
    assert metadata(first, ["analytics", "reward_ledger"])["appended"] == 2
    assert metadata(first, ["audit", "fraud_flags"])["stage"]["new_by_rule"] == {"SAME_IP_AS_ADVOCATE": 1}
    assert metadata(first, ["audit", "promo_code_issues"])["stage"]["by_problem"] == {"missing": 1}
    assert "preview" in metadata(first, ["analytics", "rewards"])
    assert metadata(first, ["analytics", "rewards"])["as_of"] == at(40).isoformat()

    second = materialize(assets(), resources=resources(tmp_path, db))
    assert second.success
    for key in KEYS:
        stage = metadata(second, key).get("stage", {})
        assert stage.get("inserted", 0) + stage.get("updated", 0) + stage.get("deleted", 0) == 0, key
    assert metadata(second, ["analytics", "reward_ledger"])["appended"] == 0
    assert metadata(second, ["analytics", "referral_attribution"])["stage"]["mode"] == "incremental"
    with duckdb.connect(str(db), read_only=True) as check:
        assert check.execute("SELECT status, count(*) FROM analytics.rewards GROUP BY 1 ORDER BY 1").fetchall() == [
            ("approved", 1), ("on_hold", 1)]
        assert check.execute("SELECT count(*) FROM analytics.reward_ledger").fetchall() == [(2,)]


def test_stages_whose_inputs_never_ran_are_skipped(tmp_path):
    db = tmp_path / "empty.duckdb"
    result = materialize(assets(), resources=resources(tmp_path, db))
    assert result.success
    meta = metadata(result, ["analytics", "referral_events"])
    assert meta["skipped"] is True
    assert meta["missing_inputs"] == ["analytics.customers", "identity.customer_map", "identity.email_index",
                                      "staging.referral_events"]
    assert metadata(result, ["analytics", "rewards"])["skipped"] is True
