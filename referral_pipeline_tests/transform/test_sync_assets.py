"""The Yotpo sync asset under dagster.materialize on a temporary DuckDB file and the simulator."""
from __future__ import annotations

import duckdb
from dagster import materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline.assets.sync import build_sync_assets, sync_targets, yotpo_targets
from referral_pipeline.clients.yotpo import YotpoResource
from referral_pipeline.resources import PipelineSettings, REPO_ROOT
from referral_pipeline_tests.transform.identity_support import programs
from referral_pipeline_tests.transform.sync_support import GUID, KEY, customer, item, new_db, order, refund, writes, yotpo


def test_yotpo_sync_asset_materializes_and_is_idempotent(tmp_path):
    path = str(tmp_path / "w.duckdb")
    con = new_db(path)
    customer(con, "cus_a", "ann@example.com")
    order(con, "sf:1", "cus_a", "ann@example.com")
    item(con, "sf:1", "1", "sku", 1, "100.00")
    refund(con, "sf:r1", "sf:1", "10.00")
    con.close()
    assets = build_sync_assets(programs(), yotpo_targets(programs()))
    assert [a.key.to_user_string() for a in assets] == ["sync/yotpo"]
    assert [t.name for t in sync_targets(programs())][:3] == ["yotpo", "friendbuy", "salesforce"]
    with yotpo() as sim:
        resources = {"duckdb": DuckDBResource(database=path),
                     "settings": PipelineSettings(config_path=str(REPO_ROOT / "data" / "programs.yaml")),
                     "api_yotpo": YotpoResource(guid=GUID, api_key=KEY, api_url=sim.base_url + "/api/v2")}
        first = materialize(assets, resources=resources)
        assert first.success
        md = first.asset_materializations_for_node(assets[0].op.name)[0].metadata
        assert (md["attempted"].value, md["sent"].value, md["failed"].value, md["dead"].value) == (3, 3, 0, 0)
        assert md["pulled"].value == 1 and md["requests"].value == 3
        assert "achieved_requests_per_second" in md and md["error_sample"].value == "(none)"
        w = writes(sim)
        second = materialize(assets, resources=resources)
        md2 = second.asset_materializations_for_node(assets[0].op.name)[0].metadata
        assert (md2["attempted"].value, md2["unchanged"].value, md2["requests"].value) == (0, 3, 0)
        assert writes(sim) == w
    with duckdb.connect(path, read_only=True) as ro:
        assert ro.execute("SELECT entity, status FROM ops.sync_state ORDER BY 1").fetchall() == [
            ("customers", "ok"), ("orders", "ok"), ("refunds", "ok")]


def test_generated_worlds_announce_the_yotpo_plan_rate_and_the_resource_follows_it(tmp_path, monkeypatch):
    from referral_pipeline.sandbox.core.config import config_from_mapping, load_config_file
    from referral_pipeline.sandbox.generator.settings import SANDBOX_YAML

    (tmp_path / "sandbox.yaml").write_text(SANDBOX_YAML)
    cfg = config_from_mapping(load_config_file(tmp_path / "sandbox.yaml"))
    assert cfg.for_system("yotpo").rate_limit["requests_per_second"] == 200
    with yotpo(rate_per_second=200) as sim:
        assert sim.env_vars(sim.base_url)["YOTPO_RATE_LIMIT_PER_SECOND"] == "200"
    with yotpo(rate_per_second=0) as sim:                  # no limit: nothing announced, client default
        assert "YOTPO_RATE_LIMIT_PER_SECOND" not in sim.env_vars(sim.base_url)
    monkeypatch.setenv("YOTPO_RATE_LIMIT_PER_SECOND", "200")
    assert YotpoResource.from_env_prefix("YOTPO").rate_limit_per_second == 200.0
    monkeypatch.delenv("YOTPO_RATE_LIMIT_PER_SECOND")
    assert YotpoResource.from_env_prefix("YOTPO").rate_limit_per_second == 5.0


def test_the_friendbuy_simulator_announces_its_plan_and_the_resource_follows_it(monkeypatch):
    from referral_pipeline.clients.friendbuy import FriendbuyResource
    from referral_pipeline.sandbox.core.config import SystemConfig
    from referral_pipeline.sandbox.friendbuy.simulator import FriendbuySimulator

    sim = FriendbuySimulator(SystemConfig(options={"duplicate_purchase": "ignore"}, rate_limit={"requests_per_second": 300}))
    sim.start()
    env = sim.env_vars("http://127.0.0.1:1")
    assert (env["FRIENDBUY_PUSH_RATE_LIMIT_PER_SECOND"], env["FRIENDBUY_ORDER_ID_DEDUP"]) == ("300", "true")
    default = FriendbuySimulator(SystemConfig())
    default.start()
    assert not {"FRIENDBUY_PUSH_RATE_LIMIT_PER_SECOND", "FRIENDBUY_ORDER_ID_DEDUP"} & set(default.env_vars("http://x"))
    monkeypatch.setenv("FRIENDBUY_PUSH_RATE_LIMIT_PER_SECOND", "300")
    assert FriendbuyResource.from_env_prefix("FRIENDBUY").push_rate_limit_per_second == 300.0
    monkeypatch.delenv("FRIENDBUY_PUSH_RATE_LIMIT_PER_SECOND")
    assert FriendbuyResource.from_env_prefix("FRIENDBUY").push_rate_limit_per_second == 10.0
