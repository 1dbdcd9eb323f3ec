"""audit.promo_code_issues (product §5.1): every code Friendbuy distributed, checked against the
coupons of the distributing market's platforms; one row per (code, market, problem) currently true."""
from __future__ import annotations

import json
from datetime import timedelta

from referral_pipeline.transform.attribution import run_promo_codes, run_referral_events

from .referrals_support import World, at, new_db, programs, rows


def run(con, as_of):
    run_referral_events(con, programs(), as_of)
    return run_promo_codes(con, programs(), as_of)


def issues(con):
    return rows(con, "SELECT code, market_id, campaign_id, problem FROM audit.promo_code_issues ORDER BY ALL")


def test_every_problem_and_the_codes_without_one():
    con = new_db()
    w = World(con)
    for name in ("alice", "f1", "f2", "f3"):
        w.customer(name)
    d = at(1)   # distribution date
    codes = {   # code -> platform coupon
        "FRIEND-OK": dict(source="ct", store="us"),
        "FRIEND-ANYSTORE": dict(source="ct", store=None),                       # valid in every store
        "FRIEND-BC": dict(source="bc", store=None, max_uses=1),
        "FRIEND-OFF": dict(source="ct", store="us", active=False),
        "FRIEND-MULTI": dict(source="ct", store="us", max_uses=5),
        "FRIEND-UNLIMITED": dict(source="bc", store=None, max_uses=None),
        "FRIEND-AUTO": dict(source="ct", store="us", requires_code=False),     # applies without the code
        "FRIEND-OLD": dict(source="ct", store="us", valid_until=d - timedelta(days=3)),
        "FRIEND-SOON": dict(source="ct", store="us", valid_from=d + timedelta(days=2)),
        "FRIEND-UKSTORE": dict(source="ct", store="uk"),                         # another market's store
        "FRIEND-EUR": dict(source="ct", store="us", currency="EUR"),             # another currency
        "FRIEND-TWICE": dict(source="ct", store="us"),                           # also distributed by camp-uk
        "SORRY-1": dict(source="ct", store="us", name="Customer care goodwill"), # a non-referral promotion
    }
    for code, kw in codes.items():
        w.coupon(code, **kw)
    for code in [*codes, "FRIEND-MISSING"]:
        w.incentive("alice", "f1", code.lower(), d)
    w.incentive("alice", "f2", "FRIEND-TWICE", d, campaign="camp-uk")
    w.reward_distributed("alice", "f3", d, coupon="THANKS-1")                   # advocate reward codes too
    w.coupon("THANKS-1", source="bc", store=None, name="Refer-a-friend: advocate reward")

    result = run(con, at(5))

    assert issues(con) == [
        ("FRIEND-AUTO", "us", "camp-us", "not_single_use"),
        ("FRIEND-EUR", "us", "camp-us", "wrong_market"),
        ("FRIEND-MISSING", "us", "camp-us", "missing"),
        ("FRIEND-MULTI", "us", "camp-us", "not_single_use"),
        ("FRIEND-OFF", "us", "camp-us", "inactive"),
        ("FRIEND-OLD", "us", "camp-us", "expired"),
        ("FRIEND-SOON", "us", "camp-us", "expired"),
        ("FRIEND-TWICE", "uk", "camp-uk", "collision"),
        ("FRIEND-TWICE", "us", "camp-us", "collision"),
        ("FRIEND-UKSTORE", "us", "camp-us", "wrong_market"),
        ("FRIEND-UNLIMITED", "us", "camp-us", "not_single_use"),
        ("SORRY-1", "us", "camp-us", "collision"),
    ]
    assert result.by_problem == {"collision": 3, "expired": 2, "missing": 1, "not_single_use": 3, "wrong_market": 2,
                                 "inactive": 1}
    evidence = {(c, m, p): json.loads(e) for c, m, p, e in
                rows(con, "SELECT code, market_id, problem, evidence FROM audit.promo_code_issues")}
    assert evidence[("FRIEND-TWICE", "us", "collision")]["kinds"] == ["two_campaigns"]
    assert evidence[("FRIEND-TWICE", "us", "collision")]["campaigns"] == ["camp-uk", "camp-us"]
    assert evidence[("SORRY-1", "us", "collision")]["kinds"] == ["non_referral_promotion"]
    assert evidence[("SORRY-1", "us", "collision")]["promotions"][0]["name"] == "Customer care goodwill"
    assert evidence[("FRIEND-MULTI", "us", "not_single_use")]["max_uses"] == 5
    assert evidence[("FRIEND-AUTO", "us", "not_single_use")]["requires_code"] is False
    assert evidence[("FRIEND-OLD", "us", "expired")]["not_yet_valid"] is False
    assert evidence[("FRIEND-SOON", "us", "expired")]["not_yet_valid"] is True
    assert evidence[("FRIEND-UKSTORE", "us", "wrong_market")]["found"][0]["store"] == "uk"
    assert evidence[("FRIEND-MISSING", "us", "missing")]["kinds"] == ["friend_incentive"]

    # a re-run changes nothing; a fixed code leaves the table, the others keep their detected_at
    assert run(con, at(6)).changes.changed == 0
    con.execute("UPDATE staging.coupons SET is_active = TRUE WHERE code = 'FRIEND-OFF'")
    fixed = run(con, at(7))
    assert (fixed.changes.inserted, fixed.changes.updated, fixed.changes.deleted) == (0, 0, 1)
    assert rows(con, "SELECT DISTINCT detected_at FROM audit.promo_code_issues") == [(at(5),)]
