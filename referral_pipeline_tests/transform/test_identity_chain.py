"""The referral stages on the identity stage's own ``analytics.orders`` view (staging rows written by
hand, identity run first, as a scheduled run does): the stages then look orders up by key, number or
id through ``identity.order_ids`` (the view's orders without the customer join). An attributed order
that leaves staging loses its attribution on the next incremental run, a Friendbuy purchase row that
names an order by its number attributes it, and a rebuild of each stage changes nothing after it."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from referral_pipeline.transform.attribution import run_attribution, run_promo_codes, run_referral_events
from referral_pipeline.transform.attribution.context import changed_orders, identity_orders_current
from referral_pipeline.transform.identity.runner import run_identity
from referral_pipeline.transform.rewards import run_fraud, run_rewards

from .identity_support import customer, delete_staged, event, new_db, order, programs, rows

AS_OF = datetime(2026, 3, 20, tzinfo=timezone.utc)
ATTRIBUTED = "SELECT order_key, attribution_method, referral_code FROM analytics.referral_attribution ORDER BY 1"


@pytest.fixture
def con():
    c = new_db()
    yield c
    c.close()


def chain(con, run_id: str, rebuild: bool = False) -> dict:
    progs = programs()
    run_identity(con, progs, run_id, AS_OF, rebuild=rebuild)
    return {"events": run_referral_events(con, progs, AS_OF, rebuild=rebuild),
            "attribution": run_attribution(con, progs, AS_OF, run_id, rebuild=rebuild),
            "promo": run_promo_codes(con, progs, AS_OF, rebuild=rebuild),
            "fraud": run_fraud(con, progs, AS_OF, run_id, rebuild=rebuild),
            "rewards": run_rewards(con, progs, AS_OF, run_id)}


def world(con) -> None:
    customer(con, "sf:ADV", "adv@example.com", first_name="Ada")
    customer(con, "ct:F1", "f1@example.com")
    customer(con, "ct:F2", "f2@example.com")
    event(con, "s1", "share", occurred_at="2026-03-01T00:00:00", advocate_email="adv@example.com",
          referral_code="ADA10", channel="email")
    event(con, "p1", "purchase", occurred_at="2026-03-06T00:00:00", advocate_email="adv@example.com",
          friend_email="f2@example.com", order_id="NUM-2")
    order(con, "ct:o1", "ct:F1", gross="90", placed_at="2026-03-05T12:00:00", referral_code="ada10", store="us")
    order(con, "ct:o2", "ct:F2", gross="80", placed_at="2026-03-06T12:00:00", order_number="NUM-2", store="us")


def test_attribution_on_the_identity_view_follows_orders_leaving_staging(con):
    world(con)
    first = chain(con, "r1")
    assert first["attribution"].mode == "full"
    assert rows(con, ATTRIBUTED) == [("ct:o1", "referral_code", "ada10"), ("ct:o2", "friendbuy", None)]
    # the stages looked the orders up in the identity stage's staged rows, without the customer join
    assert '"identity".staged_orders' in rows(con, "SELECT sql FROM duckdb_views() WHERE view_name = 'order_ids' "
                                                   "AND temporary")[0][0]

    delete_staged(con, "staging.orders", "order_key", "ct:o1")          # moved to quarantine
    order(con, "ct:o3", "ct:F1", gross="70", placed_at="2026-03-07T12:00:00", referral_code="ADA10", store="us")
    second = chain(con, "r2")
    assert second["attribution"].mode == "incremental"
    assert identity_orders_current(con)          # (the removal was seen in the identity stage's order hashes)
    assert rows(con, ATTRIBUTED) == [("ct:o2", "friendbuy", None), ("ct:o3", "referral_code", "ADA10")]

    # the changed orders the incremental stages read (staged rows joined by identity.orders_of) are the view's
    for mark in (0, 3, 7, 10 ** 6):
        assert changed_orders(con, "changed", mark) == len(rows(con, f"SELECT * FROM analytics.orders WHERE load_seq > {mark}"))
        assert rows(con, "SELECT * FROM changed ORDER BY order_key") == rows(
            con, f"SELECT * FROM analytics.orders WHERE load_seq > {mark} ORDER BY order_key")
    assert len(rows(con, "SELECT * FROM changed")) == 0 and changed_orders(con, "changed", 3) == 2

    # an order leaving staging with no identity run since: the stage does not trust the identity
    # stage's order hashes then (they still hold it) and looks the keys up in the staged orders
    delete_staged(con, "staging.orders", "order_key", "ct:o3")
    assert not identity_orders_current(con)
    assert run_attribution(con, programs(), AS_OF, "r2b").mode == "incremental"
    assert rows(con, ATTRIBUTED) == [("ct:o2", "friendbuy", None)]
    order(con, "ct:o3", "ct:F1", gross="70", placed_at="2026-03-07T12:00:00", referral_code="ADA10", store="us")
    chain(con, "r2c")
    assert rows(con, ATTRIBUTED) == [("ct:o2", "friendbuy", None), ("ct:o3", "referral_code", "ADA10")]

    full = chain(con, "r3", rebuild=True)
    assert full["attribution"].mode == "full" and full["attribution"].changes.changed == 0
    assert full["events"].changes.changed == 0 and full["fraud"].new_flags == 0
    assert (full["rewards"].changes.changed, full["rewards"].ledger_rows) == (0, 0)
