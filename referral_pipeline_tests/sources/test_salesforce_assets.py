"""The Salesforce extraction and staging assets run by ``dagster.materialize`` against the simulator,
with the API resource built from the sandbox's environment variables (client credentials)."""
from __future__ import annotations

import sys

import duckdb
import pytest
from dagster import AssetKey, materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline_tests.sources.asset_support import instance_assets
from referral_pipeline.clients.salesforce import SalesforceResource
from referral_pipeline.config.programs import load_programs
from referral_pipeline.resources import PipelineSettings
from referral_pipeline.sources.salesforce import PLUGIN

from .salesforce_support import PROGRAMS_YAML, salesforce_sim, sid, small_org, upsert, write_org

ENV = ("SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET",
       "SALESFORCE_DOMAIN", "SALESFORCE_API_VERSION")


@pytest.fixture
def programs_file(tmp_path):
    path = tmp_path / "programs.yaml"
    path.write_text(PROGRAMS_YAML)
    return path


def salesforce_assets(programs_path):
    (instance,) = load_programs(programs_path).sources
    return instance, instance_assets(PLUGIN, instance)


def test_assets_materialize_against_the_simulator(tmp_path, programs_file, monkeypatch):
    org = small_org(n=8)
    org["Order"][2]["Status"] = "Cancelled"
    db = tmp_path / "warehouse.duckdb"
    with salesforce_sim(write_org(tmp_path, org)) as sim:
        for name in ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in sim.env_vars(sim.base_url).items():
            monkeypatch.setenv(name, value)
        instance, assets = salesforce_assets(programs_file)
        resources = {"duckdb": DuckDBResource(database=str(db)),
                     "settings": PipelineSettings(config_path=str(programs_file)),
                     f"api_{instance.id}": PLUGIN.make_resource(instance.prefix)}
        first = materialize(assets, resources=resources)
        upsert(sim, "Contact", [{"Id": sid("003", 2), "FirstName": "Renamed"}])
        second = materialize(assets, resources=resources)
    assert first.success and second.success
    contacts = materialization(first, ["raw", "sf", "contact"])
    assert (contacts["rows_fetched"], contacts["rows_new"], contacts["dagster/row_count"]) == (8, 8, 8)
    # COUNT() and one page per entity, plus one login for the run (the five clients share the token)
    entities = ("account", "contact", "order", "order_item", "referral_reward")
    assert sum(materialization(first, ["raw", "sf", e])["requests"] for e in entities) == 2 * 5 + 1
    items = materialization(first, ["raw", "sf", "order_item"])
    assert items["rows_new"] == 16 and items["pages"] == 1
    staged = {t: materialization(first, ["staging", t]) for t in ("customers", "orders", "order_items", "refunds")}
    assert {t: (m["rows_staged"], m["rows_quarantined"]) for t, m in staged.items()} == {
        "customers": (8, 0), "orders": (8, 0), "order_items": (16, 0), "refunds": (1, 0)}
    again = materialization(second, ["raw", "sf", "contact"])
    assert (again["rows_fetched"], again["rows_new"], again["rows_updated"]) == (2, 0, 1)  # overlap + the change
    assert materialization(second, ["staging", "customers"])["rows_staged"] == 1
    assert materialization(second, ["staging", "orders"])["rows_staged"] == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT first_name FROM staging.customers WHERE source_customer_id = ?",
                           [sid("003", 2)]).fetchone() == ("Renamed",)
        assert con.execute("SELECT kind, count(*) FROM staging.refunds GROUP BY 1").fetchall() == [("cancellation", 1)]
        assert con.execute("SELECT count(*) FROM ops.extract_log").fetchone()[0] == 2 * 5


def materialization(result, path):
    key = AssetKey(path)
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_definitions_load_with_the_salesforce_instance(programs_file, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFERRAL_CONFIG", str(programs_file))
    if "referral_pipeline.definitions" in sys.modules:
        build_definitions = sys.modules["referral_pipeline.definitions"].build_definitions
    else:
        from referral_pipeline.definitions import build_definitions
    defs = build_definitions(str(programs_file))
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"raw/sf/{e.entity}" for e in PLUGIN.entities} | {
        "staging/customers", "staging/orders", "staging/order_items", "staging/refunds"} <= keys
    assert isinstance(defs.resources["api_sf"], SalesforceResource)
