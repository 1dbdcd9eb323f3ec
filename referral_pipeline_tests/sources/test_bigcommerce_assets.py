"""The BigCommerce extraction and staging assets run by ``dagster.materialize`` against the
simulator, with the API resource built from environment variables; the resource's credential
handling; the definitions with a BigCommerce instance (coupons only in the nightly job)."""
from __future__ import annotations

import sys

import duckdb
import pytest
from dagster import AssetKey, EnvVar, materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline_tests.sources.asset_support import instance_assets
from referral_pipeline.clients.bigcommerce import DEFAULT_API_URL, BigCommerceError, BigCommerceResource
from referral_pipeline.config.programs import load_programs
from referral_pipeline.resources import PipelineSettings
from referral_pipeline.sources.bigcommerce import PLUGIN

from .bigcommerce_support import bc_sim, small_world, write_world

PROGRAMS = """
sources:
  - {id: bc, type: bigcommerce, env_prefix: BIGCOMMERCE, page_size: 10}
markets:
  - id: us
    business_unit: acme-us
    currency: USD
    match: [{source: bc}]
    advocate_reward: {amount: 20, currency: USD}
"""
ENV = ("BIGCOMMERCE_STORE_HASH", "BIGCOMMERCE_ACCESS_TOKEN", "BIGCOMMERCE_API_URL")


@pytest.fixture
def programs_file(tmp_path):
    path = tmp_path / "programs.yaml"
    path.write_text(PROGRAMS)
    return path


def bigcommerce_assets(programs_path):
    (instance,) = load_programs(programs_path).sources
    return instance, instance_assets(PLUGIN, instance)


def test_assets_materialize_against_the_simulator(tmp_path, programs_file, monkeypatch):
    db = tmp_path / "warehouse.duckdb"
    with bc_sim(write_world(tmp_path, small_world())) as sim:
        for name, value in sim.env_vars(sim.base_url).items():
            monkeypatch.setenv(name, value)
        instance, assets = bigcommerce_assets(programs_file)
        resources = {"duckdb": DuckDBResource(database=str(db)),
                     "settings": PipelineSettings(config_path=str(programs_file)),
                     f"api_{instance.id}": PLUGIN.make_resource(instance.prefix)}
        first = materialize(assets, resources=resources)
        second = materialize(assets, resources=resources)
    assert first.success and second.success
    orders = materialization(first, ["raw", "bc", "orders"])
    # pages of 10 (page_size from the programs file): the archived walk; a page of the 12 orders
    # sharing one stamp, that stamp by id (2 pages), then 2 pages; one call per couponed order (2)
    assert (orders["rows_fetched"], orders["rows_new"], orders["dagster/row_count"], orders["requests"]) == (31, 31, 31, 8)
    staged = materialization(first, ["staging", "orders"])
    assert (staged["rows_staged"], staged["rows_quarantined"], staged["dagster/row_count"]) == (31, 0, 31)
    assert materialization(first, ["staging", "order_items"])["rows_staged"] == 62
    for entity in ("customers", "orders", "refunds", "coupons"):
        again = materialization(second, ["raw", "bc", entity])
        assert (again["rows_new"], again["rows_updated"]) == (0, 0)
    assert materialization(second, ["staging", "orders"])["rows_staged"] == 0
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {t: con.execute(f"SELECT count(*) FROM staging.{t} WHERE source = 'bc'").fetchone()[0]
                  for t in ("customers", "orders", "order_items", "refunds", "coupons")}
        cursors = dict(con.execute("SELECT entity, cursor_id FROM ops.sync_cursors WHERE source = 'bc'").fetchall())
    assert tables == {"customers": 23, "orders": 31, "order_items": 62, "refunds": 5, "coupons": 6}
    assert cursors == {"customers": "23", "orders": "129", "refunds": "5", "coupons": None}


def materialization(result, path):
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(path)]
    (event,) = events
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_resource_binds_only_the_variables_that_are_set(monkeypatch):
    for name in ENV + tuple(n.replace("BIGCOMMERCE", "BIGCOMMERCE_EU") for n in ENV):
        monkeypatch.delenv(name, raising=False)
    bare = BigCommerceResource.from_env_prefix("BIGCOMMERCE")
    assert (bare.store_hash, bare.access_token, bare.api_url) == ("", "", DEFAULT_API_URL)
    with pytest.raises(BigCommerceError, match="BIGCOMMERCE_STORE_HASH and BIGCOMMERCE_ACCESS_TOKEN"):
        bare.client()
    monkeypatch.setenv("BIGCOMMERCE_EU_STORE_HASH", "abc123")
    monkeypatch.setenv("BIGCOMMERCE_EU_ACCESS_TOKEN", "secret")
    bound = BigCommerceResource.from_env_prefix("BIGCOMMERCE_EU")
    assert isinstance(bound.store_hash, EnvVar) and bound.store_hash.env_var_name == "BIGCOMMERCE_EU_STORE_HASH"
    assert isinstance(bound.access_token, EnvVar) and bound.api_url == DEFAULT_API_URL
    client = bound.model_copy(update={"store_hash": "abc123", "access_token": "secret"}).client()
    assert client.api.base_url == "https://api.bigcommerce.com/stores/abc123"


def test_definitions_load_with_the_bigcommerce_instance(programs_file, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFERRAL_CONFIG", str(programs_file))
    if "referral_pipeline.definitions" in sys.modules:
        build_definitions = sys.modules["referral_pipeline.definitions"].build_definitions
    else:
        from referral_pipeline.definitions import build_definitions
    defs = build_definitions(str(programs_file))
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"raw/bc/{e.entity}" for e in PLUGIN.entities} | {"staging/orders", "staging/order_items",
                                                              "staging/customers", "staging/refunds",
                                                              "staging/coupons"} <= keys
    assert isinstance(defs.resources["api_bc"], BigCommerceResource)
    hourly = defs.resolve_job_def("hourly")
    hourly_keys = {k.to_user_string() for k in hourly.asset_layer.selected_asset_keys}
    assert "raw/bc/orders" in hourly_keys and "raw/bc/coupons" not in hourly_keys
