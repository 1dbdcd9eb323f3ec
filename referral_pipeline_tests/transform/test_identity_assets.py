"""The identity multi-asset materialized by Dagster on a temporary DuckDB file."""
from __future__ import annotations

from dagster import AssetKey, materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline.assets.identity import CUSTOMER_MAP, CUSTOMERS, ORDERS, identity_assets
from referral_pipeline.resources import REPO_ROOT, PipelineSettings
from referral_pipeline_tests.transform.identity_support import customer, cus, event, new_db, order


def materializations(result) -> dict[AssetKey, dict]:
    events = result.get_asset_materialization_events()
    return {e.asset_key: e.event_specific_data.materialization.metadata for e in events}


def test_identity_assets_materialize_and_rerun_idempotently(tmp_path):
    db = str(tmp_path / "warehouse.duckdb")
    con = new_db(db)
    customer(con, "sf:003A", "Ann.Lee@Example.com", first_name="Ann", last_name="Lee")
    customer(con, "ct:c1", " ann.lee@example.com", first_name="Annie")
    order(con, "ct:o1", "ct:c1", gross="80")
    order(con, "bc:9", None, email="guest@example.org", gross="20")
    event(con, "1", "share", advocate_email="ann.lee@example.com", referral_code="ANN1")
    con.close()
    resources = {"duckdb": DuckDBResource(database=db),
                 "settings": PipelineSettings(config_path=str(REPO_ROOT / "data" / "programs.yaml"),
                                              as_of="2026-06-01T00:00:00Z")}

    first = materialize([identity_assets], resources=resources)
    assert first.success
    meta = materializations(first)
    assert set(meta) == {CUSTOMER_MAP, ORDERS, CUSTOMERS}
    assert meta[CUSTOMER_MAP]["dagster/row_count"].value == 3
    assert meta[CUSTOMER_MAP]["new_identities"].value == {"customer_record": 2, "guest": 1}
    assert meta[ORDERS]["dagster/row_count"].value == 2
    assert meta[CUSTOMERS]["dagster/row_count"].value == 2
    assert meta[CUSTOMERS]["customers_recomputed"].value == 2
    assert "ann.lee@example.com" in meta[CUSTOMERS]["preview"].value.lower()

    second = materialize([identity_assets], resources=resources)
    meta = materializations(second)
    assert meta[CUSTOMER_MAP]["new_identities"].value == {}
    assert meta[CUSTOMERS]["customers_recomputed"].value == 0
    run_meta = meta[CUSTOMERS]["identity_run"].value
    assert (run_meta["records_changed"], run_meta["orders_changed"], run_meta["events_changed"]) == (0, 0, 0)

    rebuilt = materialize([identity_assets], resources=resources,
                          run_config={"ops": {"identity_stage": {"config": {"rebuild": True}}}})
    assert materializations(rebuilt)[CUSTOMERS]["identity_run"].value["rebuild"] is True

    con = new_db(db)
    assert con.execute("SELECT customer_key, email, first_name, orders_count, referral_code FROM analytics.customers "
                       "ORDER BY 1").fetchall() == sorted([
        (cus("ann.lee@example.com"), "Ann.Lee@Example.com", "Ann", 1, "ANN1"),
        (cus("guest@example.org"), "guest@example.org", None, 1, None)])
    assert con.execute("SELECT order_key, customer_key FROM analytics.orders ORDER BY 1").fetchall() == [
        ("bc:9", cus("guest@example.org")), ("ct:o1", cus("ann.lee@example.com"))]
    con.close()


def test_definitions_wire_the_identity_group():
    from referral_pipeline.definitions import defs

    graph = defs.get_repository_def().asset_graph
    for key in (CUSTOMER_MAP, ORDERS, CUSTOMERS):
        assert graph.get(key).group_name == "identity"
    assert set(graph.get(CUSTOMER_MAP).parent_keys) == {AssetKey(["staging", t]) for t in ("customers", "orders", "referral_events")}
    assert CUSTOMER_MAP in graph.get(CUSTOMERS).parent_keys and ORDERS in graph.get(CUSTOMERS).parent_keys
