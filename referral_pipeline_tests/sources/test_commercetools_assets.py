"""The commercetools assets in Dagster: ``materialize`` with the resource built from the CTP_*
variables the simulator prints, a DuckDB file and the programs file; and the definitions loading
without any credentials set."""
from __future__ import annotations

import pytest
from dagster import AssetKey, materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline_tests.sources.asset_support import instance_assets
from referral_pipeline.clients.commercetools import ENV_SUFFIXES, CommercetoolsConfigError, CommercetoolsResource
from referral_pipeline.config.programs import load_programs
from referral_pipeline.resources import PipelineSettings
from referral_pipeline.sources.commercetools import PLUGIN

from .commercetools_support import (PROGRAMS_YAML, cart_discount, customer, discount_code, order, rows, serve, uid,
                                    write_fixtures)


def ct_assets(programs_path):
    instance = load_programs(programs_path).source("ct")
    return instance_assets(PLUGIN, instance)


def metadata_by_asset(result) -> dict[str, dict]:
    return {"/".join(e.asset_key.path): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def test_assets_materialize_against_the_simulator(tmp_path, monkeypatch):
    world = write_fixtures(tmp_path / "world", customers=[customer(i) for i in range(8)],
                           orders=[order(i, codes=[uid("d", 1)] if i == 2 else []) for i in range(25)]
                           + [order(99, store="mars")],
                           discount_codes=[discount_code(1, "FRIEND-20", [1])], cart_discounts=[cart_discount(1)])
    programs = tmp_path / "programs.yaml"
    programs.write_text(PROGRAMS_YAML)
    db = tmp_path / "warehouse.duckdb"
    with serve(world) as sim:
        for key, value in sim.env_vars(sim.base_url).items():
            monkeypatch.setenv(key, value)
        resources = {"duckdb": DuckDBResource(database=str(db)), "settings": PipelineSettings(config_path=str(programs)),
                     "api_ct": PLUGIN.make_resource("CTP")}
        first = materialize(ct_assets(programs), resources=resources)
        assert first.success
        meta = metadata_by_asset(first)
        assert {k: meta[f"raw/ct/{k}"]["rows_new"] for k in ("customers", "orders", "discount_codes", "cart_discounts")} \
            == {"customers": 8, "orders": 26, "discount_codes": 1, "cart_discounts": 1}
        # one page per entity, plus one token for the whole run (the four clients share it)
        assert sum(meta[f"raw/ct/{k}"]["requests"] for k in ("customers", "orders", "discount_codes", "cart_discounts")) == 5
        assert meta["staging/orders"]["rows_staged"] == 25 and meta["staging/orders"]["rows_quarantined"] == 1
        assert meta["staging/coupons"]["dagster/row_count"] == 1

        second = materialize(ct_assets(programs), resources=resources)
        assert second.success
        meta = metadata_by_asset(second)
        assert all(meta[f"raw/ct/{k}"]["rows_new"] == 0 and meta[f"raw/ct/{k}"]["rows_updated"] == 0
                   for k in ("customers", "orders", "discount_codes", "cart_discounts"))
        assert meta["staging/orders"]["rows_staged"] == 0
    import duckdb
    with duckdb.connect(str(db), read_only=True) as con:
        assert rows(con, "SELECT count(*) FROM staging.orders")[0][0] == 25
        assert rows(con, "SELECT market_id, count(*) FROM staging.orders GROUP BY 1") == [("us", 25)]
        assert rows(con, "SELECT source_id, reason FROM audit.quarantine") == [(uid("a", 99), "no_market")]
        assert rows(con, "SELECT coupon_codes FROM staging.orders WHERE source_order_id = ?", [uid("a", 2)]) == [(["FRIEND-20"],)]
        assert rows(con, "SELECT count(*) FROM ops.extract_log WHERE source = 'ct'")[0][0] == 8


def test_definitions_load_without_credentials(tmp_path, monkeypatch):
    for suffix in ENV_SUFFIXES.values():
        monkeypatch.delenv(f"CTP_{suffix}", raising=False)
    programs = tmp_path / "programs.yaml"
    programs.write_text(PROGRAMS_YAML)
    monkeypatch.setenv("REFERRAL_CONFIG", str(programs))    # the module builds its own defs on import
    from referral_pipeline.definitions import build_definitions

    defs = build_definitions(str(programs))
    keys = {key for key in defs.resolve_all_asset_keys()}
    assert {AssetKey(["raw", "ct", e]) for e in ("customers", "orders", "discount_codes", "cart_discounts")} <= keys
    assert {AssetKey(["staging", t]) for t in ("customers", "orders", "order_items", "refunds", "coupons")} <= keys
    with pytest.raises(CommercetoolsConfigError, match="CTP_PROJECT_KEY, CTP_CLIENT_ID, CTP_CLIENT_SECRET"):
        CommercetoolsResource.from_env_prefix("CTP").client()


def test_resource_reads_only_the_variables_that_are_set(monkeypatch):
    monkeypatch.setenv("CTP_EU_PROJECT_KEY", "shop-eu")
    monkeypatch.setenv("CTP_EU_CLIENT_ID", "id")
    monkeypatch.setenv("CTP_EU_CLIENT_SECRET", "secret")
    monkeypatch.setenv("CTP_EU_SCOPES", "view_orders:shop-eu,view_customers:shop-eu")
    monkeypatch.delenv("CTP_EU_AUTH_URL", raising=False)
    monkeypatch.delenv("CTP_EU_API_URL", raising=False)
    resource = CommercetoolsResource.from_env_prefix("CTP_EU")
    assert resource.auth_url == "https://auth.europe-west1.gcp.commercetools.com"
    assert resource.api_url == "https://api.europe-west1.gcp.commercetools.com"
    # secrets stay EnvVar references in the definitions (resolved only when a run starts)
    assert type(resource.client_secret).__name__ == "EnvVar"
