"""The Yotpo simulator's parts tested directly: points arithmetic, VIP tiers, validation, settings,
the per-GUID rate limiter (with a fake clock) and the customer book's indexes."""
from __future__ import annotations

import pytest

from referral_pipeline.sandbox.core.stamps import to_micros
from referral_pipeline.sandbox.core.store import Collection, CollectionSpec
from referral_pipeline.sandbox.yotpo import points, validation, vip
from referral_pipeline.sandbox.yotpo.access import AccountRateLimiter
from referral_pipeline.sandbox.yotpo.customers import CustomerBook, new_customer, public_view
from referral_pipeline.sandbox.yotpo.settings import RateLimitSettings, YotpoSettings
from referral_pipeline.sandbox.yotpo.validation import InvalidRequest


# ---- points --------------------------------------------------------------------------------------
def test_purchase_points_round_down_per_currency_unit():
    assert points.purchase_points(15000, 1) == 150
    assert points.purchase_points(15099, 1) == 150
    assert points.purchase_points(999, 2.5) == 24
    assert points.purchase_points(10000, 1, multiplier=1.5) == 150
    assert points.purchase_points(0, 1) == 0


def test_kept_points_proportional_rounded_half_up():
    assert points.kept_points(150, 15000, 0) == 150
    assert points.kept_points(150, 15000, 5000) == 100
    assert points.kept_points(150, 15000, 15000) == 0
    assert points.kept_points(150, 15000, 20000) == 0
    assert points.kept_points(10, 300, 150) == 5
    assert points.kept_points(1, 200, 100) == 1  # 0.5 rounds up
    assert points.kept_points(0, 0, 0) == 0


def test_contribution_is_derived_from_the_order():
    order = {"total_amount_cents": "20000", "points_awarded": 200, "refunded_amount_cents": 5000}
    assert points.contribution(order) == points.NOTHING  # not awarded yet
    order["awarded_at"] = "2025-01-01T00:00:00.000Z"
    assert points.contribution(order) == points.Contribution(150, 15000, 1)
    order["cancelled_at"] = "2025-01-02T00:00:00.000Z"
    assert points.contribution(order) == points.NOTHING
    before = points.Contribution(150, 15000, 1)
    points.mark_credited(order, before)
    assert points.credited(order) == before
    assert points.NOTHING.minus(before) == points.Contribution(-150, -15000, -1)


# ---- VIP tiers -----------------------------------------------------------------------------------
TIERS = [{"id": 3, "name": "Gold", "points_earned": 1000}, {"id": 1, "name": "Base"},
         {"id": 2, "name": "Silver", "points_earned": 200, "purchases_made": 3}]


def test_tiers_order_by_rank_then_thresholds():
    assert [t["name"] for t in vip.ordered(TIERS)] == ["Base", "Silver", "Gold"]
    ranked = [{"name": "B", "rank": 2, "points_earned": 5}, {"name": "A", "rank": 1, "points_earned": 900}]
    assert [t["name"] for t in vip.ordered(ranked)] == ["A", "B"]


def test_tier_for_uses_any_threshold_and_names_the_next_tier():
    tiers = vip.ordered(TIERS)
    current, upcoming = vip.tier_for({"points_earned": 10, "total_purchases": 3}, tiers)
    assert (current["name"], upcoming["name"]) == ("Silver", "Gold")
    current, upcoming = vip.tier_for({"points_earned": "junk"}, tiers)
    assert (current["name"], upcoming["name"]) == ("Base", "Silver")
    assert vip.tier_for({"points_earned": 5000}, tiers) == (tiers[2], None)
    assert vip.upgrade_requirements({"points_earned": 150, "total_purchases": 1}, tiers[1]) == \
        {"points_needed": 50, "purchases_needed": 2}


def test_refresh_sets_tier_and_entry_date_only_on_change():
    tiers = vip.ordered(TIERS)
    customer = {"points_earned": 250}
    vip.refresh(customer, tiers, "T1")
    assert (customer["vip_tier_name"], customer["vip_tier_entry_date"]) == ("Silver", "T1")
    vip.refresh(customer, tiers, "T2")
    assert customer["vip_tier_entry_date"] == "T1"
    planted = {"vip_tier_name": "Platinum"}
    vip.refresh(planted, [], "T3")  # no tiers configured: left as given
    assert planted == {"vip_tier_name": "Platinum"}


# ---- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value,expected", [(15000, 15000), ("15000", 15000), (" 7 ", 7), (12.0, 12)])
def test_whole_number_accepts_ints_and_numeric_strings(value, expected):
    assert validation.whole_number(value, "x") == expected


@pytest.mark.parametrize("value", [True, None, "12.5", 12.5, "", "1e3", [1], -1])
def test_whole_number_refuses_everything_else(value):
    with pytest.raises(InvalidRequest) as err:
        validation.whole_number(value, "x")
    assert err.value.status == 422 and str(err.value).startswith("x must be")


def test_scalar_parsers():
    assert validation.currency("EUR", "c") == "EUR"
    for bad in ("eur", "EU", "EURO", 978, None):
        with pytest.raises(InvalidRequest):
            validation.currency(bad, "c")
    assert [validation.boolean(v, "b") for v in (True, "true", "1", "FALSE", "0", None)] == \
        [True, True, True, False, False, None]
    assert validation.identifier(42, "id") == "42"
    with pytest.raises(InvalidRequest):
        validation.identifier(True, "id")
    assert validation.timestamp("2019-05-25 20:59:53", "t").isoformat() == "2019-05-25T20:59:53+00:00"


def test_parse_order_and_refund():
    order = validation.parse_order({"order_id": 7, "customer_email": "a@b.co", "total_amount_cents": "100",
                                    "customer_id": "", "status": "paid"})
    assert (order.order_id, order.total_cents, order.customer_id, order.currency_code) == ("7", 100, None, None)
    with pytest.raises(InvalidRequest, match="status must be a string"):
        validation.parse_order({"order_id": 7, "customer_email": "a@b.co", "total_amount_cents": 1, "status": 3})
    refund = validation.parse_refund({"order_id": "7", "total_amount_cents": 50, "id": 9}, currency_required=False)
    assert (refund.refund_id, refund.amount_cents, refund.currency) == ("9", 50, None)
    with pytest.raises(InvalidRequest, match="currency is required"):
        validation.parse_refund({"order_id": "7", "total_amount_cents": 50}, currency_required=True)


def test_customer_lookup_and_page_params():
    assert validation.customer_lookup({"customer_id": 5, "x": 1}) == {"customer_id": "5"}
    with pytest.raises(InvalidRequest, match="customer_email or customer_id is required"):
        validation.customer_lookup({"customer_email": ""})
    assert validation.page_params({}, 100, 500) == (1, 100, None)
    assert validation.page_params({"page": "3", "per_page": "900"}, 100, 500)[:2] == (3, 500)


# ---- settings ------------------------------------------------------------------------------------
def test_settings_defaults_and_errors():
    s = YotpoSettings.from_options({})
    assert (s.duplicate_order, s.points_per_currency_unit, s.award_statuses) == \
        ("accept", 1.0, frozenset({"paid", "complete", "completed"}))
    assert YotpoSettings.from_options({"award_statuses": "Paid, shipped"}).award_statuses == {"paid", "shipped"}
    with pytest.raises(ValueError, match="duplicate_order must be one of"):
        YotpoSettings.from_options({"duplicate_order": "maybe"})
    with pytest.raises(ValueError, match="unknown keys"):
        YotpoSettings.from_options({"duplicate_orders": "accept"})
    assert RateLimitSettings.from_mapping({}) == RateLimitSettings(5.0, 5.0, 300)
    assert RateLimitSettings.from_mapping({"requests_per_second": 10, "burst": 20}) == RateLimitSettings(10, 20, 600)
    assert not RateLimitSettings.from_mapping({"requests_per_second": None}).enabled


# ---- rate limiter --------------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_rate_limiter_bucket_per_guid_with_headers():
    clock = FakeClock()
    limiter = AccountRateLimiter(RateLimitSettings(5, 5, 300), clock)
    verdicts = [limiter.take("g1") for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False]
    assert verdicts[0].headers == {"ratelimit-limit": "5", "ratelimit-remaining": "4", "ratelimit-reset": "1",
                                   "x-ratelimit-limit-minute": "300", "x-ratelimit-remaining-minute": "299"}
    assert verdicts[5].headers["retry-after"] == "1" and verdicts[5].headers["ratelimit-remaining"] == "0"
    assert limiter.take("g2").allowed  # another GUID has its own bucket
    clock.t += 0.2
    assert limiter.take("g1").allowed and not limiter.take("g1").allowed
    assert limiter.peek("g1")["ratelimit-remaining"] == "0"
    clock.t += 1.0
    assert limiter.peek("g1")["ratelimit-remaining"] == "5"


def test_rate_limiter_minute_window_and_disabled():
    clock = FakeClock()
    limiter = AccountRateLimiter(RateLimitSettings(100, 100, 2), clock)
    assert [limiter.take("g").allowed for _ in range(3)] == [True, True, False]
    clock.t += 30
    refused = limiter.take("g")
    assert not refused.allowed and refused.headers["ratelimit-limit"] == "2" and refused.headers["retry-after"] == "30"
    clock.t += 31
    assert limiter.take("g").allowed
    off = AccountRateLimiter(RateLimitSettings(0, 0, 0), clock)
    assert off.take("g").allowed and off.take("g").headers == {} and off.peek("g") == {}


# ---- customer book -------------------------------------------------------------------------------
def make_book(*records):
    coll = Collection(CollectionSpec("customers", key="email"))
    coll.replace_all(records)
    return CustomerBook(coll), coll


def test_book_lookups_follow_writes_and_email_changes():
    book, coll = make_book({"email": "a@x.co", "third_party_id": "1", "last_seen_at": "2025-01-01T00:00:00Z"},
                           {"email": "B@x.co", "thirty_party_id": "2", "pos_account_id": "p2"})
    assert book.find({"customer_id": "2"})["email"] == "B@x.co"
    assert book.get("b@X.co")["email"] == "B@x.co"
    assert book.find({"pos_account_id": "p2"})["email"] == "B@x.co"
    book.save({**coll.get("a@x.co"), "email": "a2@x.co", "phone_number": "+1"}, previous_email="a@x.co")
    assert coll.get("a@x.co") is None and book.email_changes == {"a@x.co": "a2@x.co"}
    assert book.get("a@x.co")["email"] == "a2@x.co"
    assert book.find({"customer_id": "1"})["email"] == "a2@x.co"
    assert book.find({"phone_number": "+1"})["email"] == "a2@x.co"
    book.save({**coll.get("a2@x.co"), "third_party_id": "9"})
    assert book.find({"customer_id": "1"}) is None and book.find({"customer_id": "9"})["email"] == "a2@x.co"


def test_book_pages_by_last_seen_and_keeps_the_order_on_writes():
    rows = [{"email": f"{c}@x.co", "last_seen_at": f"2025-01-0{i + 1}T00:00:00Z"} for i, c in enumerate("dcba")]
    book, coll = make_book(*rows, {"email": "never@x.co"})
    page, total = book.page_by_last_seen(None, 1, 3)
    assert [r["email"] for r in page] == ["never@x.co", "d@x.co", "c@x.co"] and total == 5
    page, total = book.page_by_last_seen(None, 2, 3)
    assert [r["email"] for r in page] == ["b@x.co", "a@x.co"]
    book.save({**coll.get("d@x.co"), "last_seen_at": "2025-02-01T00:00:00Z"})
    page, total = book.page_by_last_seen(to_micros("2025-01-03T00:00:00Z"), 1, 10)
    assert [r["email"] for r in page] == ["b@x.co", "a@x.co", "d@x.co"] and total == 3


def test_new_customer_and_public_view():
    customer = new_customer("n@x.co", "T", opt_in=True)
    assert (customer["points_balance"], customer["opt_in"], customer["opted_in_at"]) == (0, True, "T")
    stored = {**customer, "referral_code": {"code": "N1"}, "history_items": [{"points": 1}]}
    assert "referral_code" not in public_view(stored) and "history_items" not in public_view(stored)
    assert public_view(stored, True, True)["referral_code"] == {"code": "N1"}
