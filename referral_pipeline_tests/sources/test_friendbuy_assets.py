"""The Friendbuy extraction and staging assets run by ``dagster.materialize`` against the simulator,
with the API resource built from environment variables, and the resource's credential handling."""
from __future__ import annotations

import sys

import duckdb
import pytest
from dagster import AssetKey, EnvVar, materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline_tests.sources.asset_support import instance_assets
from referral_pipeline.clients.friendbuy import DEFAULT_URL, FriendbuyError, FriendbuyResource
from referral_pipeline.config.programs import load_programs
from referral_pipeline.resources import PipelineSettings
from referral_pipeline.sources.friendbuy import PLUGIN

from .friendbuy_support import clean_world, friendbuy_sim, write_world

PROGRAMS = """
sources: []
markets:
  - id: us
    business_unit: acme-us
    currency: USD
    match: []
    friendbuy: {campaign_id: camp-us}
    advocate_reward: {amount: 20, currency: USD}
"""
ENV = ("FRIENDBUY_MAPI_KEY", "FRIENDBUY_MAPI_SECRET", "FRIENDBUY_MAPI_URL")


@pytest.fixture
def programs_file(tmp_path):
    path = tmp_path / "programs.yaml"
    path.write_text(PROGRAMS)
    return path


def friendbuy_assets(programs_path):
    (instance,) = load_programs(programs_path).friendbuy_instances()
    return instance, instance_assets(PLUGIN, instance)


def test_assets_materialize_against_the_simulator(tmp_path, programs_file, monkeypatch):
    world = clean_world(n=6)
    db = tmp_path / "warehouse.duckdb"
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        for name, value in sim.env_vars(sim.base_url).items():
            monkeypatch.setenv(name, value)
        instance, assets = friendbuy_assets(programs_file)
        assert instance.id == "fb" and instance.campaign_ids == ["camp-us"]
        resources = {"duckdb": DuckDBResource(database=str(db)),
                     "settings": PipelineSettings(config_path=str(programs_file)),
                     f"api_{instance.id}": PLUGIN.make_resource(instance.prefix)}
        first = materialize(assets, resources=resources)
        second = materialize(assets, resources=resources)
    assert first.success and second.success
    shares_first = materialization(first, ["raw", "fb", "shares"])
    assert (shares_first["rows_fetched"], shares_first["rows_new"], shares_first["dagster/row_count"]) == (6, 6, 6)
    # one page per export, plus one token for both runs (all fourteen clients share it)
    assert sum(materialization(run, ["raw", "fb", entity])["requests"] for run in (first, second)
               for entity in world) == 2 * 7 + 1
    staged_first = materialization(first, ["staging", "referral_events"])
    assert (staged_first["rows_staged"], staged_first["rows_quarantined"]) == (7 * 6, 0)
    for entity in world:
        again = materialization(second, ["raw", "fb", entity])
        assert (again["rows_new"], again["rows_updated"]) == (0, 0)
    assert materialization(second, ["staging", "referral_events"])["rows_staged"] == 0
    with duckdb.connect(str(db), read_only=True) as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM staging.referral_events GROUP BY 1").fetchall())
        logged = con.execute("SELECT count(*) FROM ops.extract_log").fetchone()[0]
    assert kinds == {"share": 6, "click": 6, "signup": 6, "purchase": 6, "advocate_reward": 6,
                     "friend_incentive": 6, "widget_view": 6}
    assert logged == 2 * 7


def materialization(result, path):
    events = result.asset_materializations_for_node(_node_of(result, path))
    (event,) = [e for e in events if e.asset_key == AssetKey(path)]
    return {k: v.value for k, v in event.metadata.items()}


def _node_of(result, path):
    for event in result.get_asset_materialization_events():
        if event.asset_key == AssetKey(path):
            return event.node_name
    raise KeyError(path)


def test_resource_binds_only_the_variables_that_are_set(monkeypatch):
    for name in ENV + tuple(n.replace("FRIENDBUY", "FB_EU") for n in ENV):
        monkeypatch.delenv(name, raising=False)
    bare = FriendbuyResource.from_env_prefix("FRIENDBUY")
    assert (bare.mapi_key, bare.mapi_secret, bare.mapi_url) == ("", "", DEFAULT_URL)
    with pytest.raises(FriendbuyError, match="FRIENDBUY_MAPI_KEY and FRIENDBUY_MAPI_SECRET"):
        bare.client()
    monkeypatch.setenv("FB_EU_MAPI_KEY", "k")
    monkeypatch.setenv("FB_EU_MAPI_SECRET", "s")
    bound = FriendbuyResource.from_env_prefix("FB_EU")
    assert isinstance(bound.mapi_key, EnvVar) and bound.mapi_key.env_var_name == "FB_EU_MAPI_KEY"
    assert bound.mapi_url == DEFAULT_URL


def test_definitions_load_with_the_friendbuy_instance(programs_file, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFERRAL_CONFIG", str(programs_file))
    if "referral_pipeline.definitions" in sys.modules:
        build_definitions = sys.modules["referral_pipeline.definitions"].build_definitions
    else:
        from referral_pipeline.definitions import build_definitions
    defs = build_definitions(str(programs_file))
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"raw/fb/{entity}" for entity in PLUGIN_ENTITIES} | {"staging/referral_events"} <= keys
    assert isinstance(defs.resources["api_fb"], FriendbuyResource)


PLUGIN_ENTITIES = [e.entity for e in PLUGIN.entities]
