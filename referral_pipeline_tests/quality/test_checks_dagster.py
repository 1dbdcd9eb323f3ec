"""Dagster wiring: blocking checks stop the pushes downstream in the same run, WARN checks do not,
and the code location registers a check exactly for the suites whose assets exist."""
from __future__ import annotations

from pathlib import Path

import duckdb
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, asset, materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline.assets.analyst import PUBLISHED_KEY, REPORT_KEY
from referral_pipeline.assets.checks import build_quality_checks
from referral_pipeline.quality import SUITES
from referral_pipeline.resources import PipelineSettings

from .support import CUS, customer, insert, order, staging_order, warehouse

PROGRAMS = str(Path(__file__).resolve().parents[2] / "data" / "programs.yaml")
ORDERS_KEY = AssetKey(["analytics", "orders"])


def _resources(db):
    return {"duckdb": DuckDBResource(database=str(db)), "settings": PipelineSettings(config_path=PROGRAMS)}


def _pushed(db):
    with duckdb.connect(str(db)) as con:
        return con.execute("SELECT count(*) FROM push_log").fetchall()[0][0]


def _assets(state):
    """analytics/orders (good or bad rows, as ``state`` says) and a push that depends on it."""

    @asset(key=ORDERS_KEY, required_resource_keys={"duckdb"}, pool="duckdb")
    def orders(context):
        with context.resources.duckdb.get_connection() as con:
            con.execute("DELETE FROM analytics.orders")
            insert(con, "analytics.orders", [order("sf:1"), order("sf:2", net_amount=-5 if state["bad"] else 5)])

    @asset(key=AssetKey(["sync", "friendbuy_purchases"]), deps=[ORDERS_KEY], required_resource_keys={"duckdb"})
    def push(context):
        with context.resources.duckdb.get_connection() as con:
            con.execute("CREATE TABLE IF NOT EXISTS push_log (run_id VARCHAR)")
            con.execute("INSERT INTO push_log VALUES (?)", [context.run_id])

    return orders, push


def test_blocking_check_stops_the_push_in_the_same_run(tmp_path):
    db = tmp_path / "w.duckdb"
    with warehouse(str(db)) as con:
        insert(con, "analytics.customers", [customer(CUS[1])])
        con.execute("CREATE TABLE push_log (run_id VARCHAR)")
    state = {"bad": True}
    orders, push = _assets(state)
    checks = build_quality_checks([orders, push])
    assert [spec.key for c in checks for spec in c.check_specs] == [AssetCheckKey(ORDERS_KEY, "data_quality")]
    assert [spec.blocking for c in checks for spec in c.check_specs] == [True]

    bad = materialize([orders, push, *checks], resources=_resources(db), raise_on_error=False)
    assert not bad.success
    (evaluation,) = bad.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity) == (False, AssetCheckSeverity.ERROR)
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert meta["failed_expectations"] == ["net_amount_non_negative"]
    assert (meta["validated_rows"], meta["delta_rows"], meta["strategy"]) == (2, 2, "fingerprint")
    failed = next(r for r in meta["results"] if r["name"] == "net_amount_non_negative")
    assert (failed["unexpected_count"], failed["failing_keys"], failed["unexpected_sample"]) == (1, ["sf:2"], [-5.0])
    assert "**FAILED**" in meta["expectations"]
    assert [m.asset_key for m in bad.get_asset_materialization_events()] == [ORDERS_KEY]
    assert _pushed(db) == 0                                   # the push did not run

    state["bad"] = False
    good = materialize([orders, push, *checks], resources=_resources(db), raise_on_error=False)
    assert good.success
    (evaluation,) = good.get_asset_check_evaluations()
    assert evaluation.passed
    assert _pushed(db) == 1


def test_warn_check_reports_but_does_not_block(tmp_path):
    db = tmp_path / "w.duckdb"
    warehouse(str(db), analytics=False).close()
    staging_key = AssetKey(["staging", "orders"])

    @asset(key=staging_key, required_resource_keys={"duckdb"})
    def staged(context):
        with context.resources.duckdb.get_connection() as con:
            insert(con, "staging.orders", [staging_order("sf:1", 1, status="lost")])

    @asset(key=AssetKey(["identity", "next"]), deps=[staging_key])
    def downstream():
        return None

    checks = build_quality_checks([staged, downstream])
    result = materialize([staged, downstream, *checks], resources=_resources(db), raise_on_error=False)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity) == (False, AssetCheckSeverity.WARN)
    assert evaluation.metadata["failed_expectations"].value == ["status_in_set"]
    assert {m.asset_key for m in result.get_asset_materialization_events()} == {staging_key, AssetKey(["identity", "next"])}


def test_check_on_an_asset_named_by_table_metadata(tmp_path):
    """A table written by an asset with another key is checked on that asset (``table`` metadata)."""

    @asset(key=AssetKey(["referrals", "reward_state"]), metadata={"table": "analytics.rewards"})
    def rewards():
        return None

    (check,) = build_quality_checks([rewards])
    (spec,) = check.check_specs
    assert (spec.asset_key, spec.blocking) == (AssetKey(["referrals", "reward_state"]), True)


def test_code_location_registers_checks_for_existing_assets_only():
    from referral_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    specs = {spec.asset_key: spec for c in defs.asset_checks for spec in c.check_specs}
    expected = {AssetKey(list(s.asset_path)): s.blocking for s in SUITES if AssetKey(list(s.asset_path)) in keys}
    assert {k: s.blocking for k, s in specs.items()} == expected
    assert AssetKey(["staging", "orders"]) in expected                 # staging assets exist today
    assert {s.name for s in specs.values()} == {"data_quality"}
    # the published copy depends on every other asset; the report is nightly only
    assert set(graph.get(PUBLISHED_KEY).parent_keys) == keys - {PUBLISHED_KEY}
    assert REPORT_KEY in defs.resolve_job_def("nightly").asset_layer.executable_asset_keys
    assert REPORT_KEY not in defs.resolve_job_def("hourly").asset_layer.executable_asset_keys
    assert PUBLISHED_KEY in defs.resolve_job_def("hourly").asset_layer.executable_asset_keys
    # the checks run in the jobs that materialize their assets
    hourly_checks = defs.resolve_job_def("hourly").asset_layer.asset_graph.asset_check_keys
    assert {c.asset_key for c in hourly_checks} >= set(expected)
