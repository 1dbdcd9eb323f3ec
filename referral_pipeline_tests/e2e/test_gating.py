"""Gating (product §8.1, §9): a failing blocking data-quality check on a push input stops every push
of that run — no write reaches any destination — and the next run with a passing check pushes."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from dagster import DagsterInstance

import referral_pipeline.definitions as definitions
from referral_pipeline.quality.suites import SUITES, TableExpectation

from .harness import PROGRAMS_YAML, Pipeline, World, sf_order, sf_order_item, sf_person

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
AS_OF = "2026-06-01T00:00:00Z"
EVERY_ORDER_IS_BAD = TableExpectation("test_every_order_is_bad", "fails on any row (planted by the test)",
                                      sql="SELECT order_key FROM analytics.orders")


def world() -> World:
    w = World()
    for collection, record in sf_person(1, "ann@example.com", T0):
        w.add("salesforce", collection, record)
    w.add("salesforce", "Order", sf_order(1, 1, T0, 120.0))
    w.add("salesforce", "OrderItem", sf_order_item(1, 1, T0, 120.0))
    return w


def failing_orders_suite():
    return [dataclasses.replace(s, table_checks=s.table_checks + (EVERY_ORDER_IS_BAD,))
            if s.table == "analytics.orders" else s for s in SUITES]


def write_requests(pipeline: Pipeline) -> int:
    return sum(n for sim in pipeline.sims.values() for key, n in sim.request_counts.items()
               if key.split(" ")[0] in ("POST", "PATCH", "PUT") and not any(
                   a in key for a in ("/oauth2/token", "/oauth/token", "/v1/authorization")))


def test_a_failing_blocking_check_stops_every_push_and_a_passing_one_lets_them_run(tmp_path, monkeypatch):
    original = definitions.build_quality_checks
    with Pipeline(tmp_path, monkeypatch, world(), PROGRAMS_YAML) as p:
        monkeypatch.setattr(definitions, "build_quality_checks",
                            lambda assets: original(assets, suites=failing_orders_suite()))
        monkeypatch.setenv("REFERRAL_AS_OF", AS_OF)
        defs = definitions.build_definitions(str(p.programs_path))
        with DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("nightly").execute_in_process(instance=instance, raise_on_error=False)
            checks = [e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == "analytics/orders"]
            assert [c.passed for c in checks] == [False] and checks[0].severity.value == "ERROR"
            materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert "analytics/orders" in materialized
        assert not {k for k in materialized if k.startswith("sync/")}          # no push ran
        assert write_requests(p) == 0

        monkeypatch.setattr(definitions, "build_quality_checks", original)
        p.run(AS_OF)
        assert write_requests(p) > 0
        assert [o["order_id"] for o in p.sims["yotpo"].state()["orders"]] == [f"sf:{sf_order(1, 1, T0)['Id']}"]
