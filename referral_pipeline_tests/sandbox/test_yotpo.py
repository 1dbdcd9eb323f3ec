"""Yotpo Loyalty simulator over real HTTP: auth, customers, orders and the duplicate policy, refunds,
points, VIP tiers, paging, the token bucket and its headers, injected faults, state."""
from __future__ import annotations

import time

import orjson
import pytest
import requests

from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sandbox.yotpo import YotpoSimulator

GUID, KEY, MERCHANT = "sandbox-yotpo-guid", "sandbox-yotpo-api-key", "sandbox-yotpo-merchant"
AUTH = {"x-guid": GUID, "x-api-key": KEY}
NO_LIMIT = {"requests_per_second": 0}
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-ratelimit-limit-minute",
                "x-ratelimit-remaining-minute")

TIERS = [
    {"id": 1, "name": "Bronze", "rank": 0, "points_earned": 0, "amount_spent_cents": 0, "purchases_made": 0,
     "points_multiplier": 1},
    {"id": 2, "name": "Silver", "rank": 1, "points_earned": 200, "points_multiplier": 1.5},
    {"id": 3, "name": "Gold", "rank": 2, "points_earned": 1000, "amount_spent_cents": 80000, "points_multiplier": 2},
]
OPTIONS = [{"id": 11, "name": "$5 off", "amount": 500, "cost_text": "500 Points"},
           {"id": 12, "name": "$10 off", "amount": 1000, "cost_text": "1000 Points"}]
PLANTED = {"email": "planted@example.com", "first_name": "Pat", "points_balance": "lots", "points_earned": 40,
           "vip_tier_name": "Platinum", "third_party_id": "sf-9", "phone_number": "+15550009",
           "last_seen_at": "2024-01-01T00:00:00.000Z",
           "referral_code": {"code": "PAT9", "expired": False},
           "history_items": [{"action": "Signed up", "points": 40, "status": "Approved"}]}


def write_fixtures(root, customers=(), tiers=(), options=()):
    folder = root / "yotpo"
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("customers", customers), ("vip-tiers", tiers), ("redemption-options", options)):
        (folder / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return root


def make_sim(root=None, options=None, rate_limit=NO_LIMIT, faults=None, state_dir=None):
    config = SystemConfig(options=options or {}, rate_limit=rate_limit, faults=faults or FaultSpec())
    return YotpoSimulator(config, data_root=root, state_dir=state_dir)


class Api:
    """A tiny Yotpo client: JSON bodies, credentials as headers."""

    def __init__(self, sim, headers=AUTH):
        self.base = sim.base_url + "/api/v2"
        self.sim = sim
        self.session = requests.Session()
        self.session.headers.update(headers)

    def get(self, path, **params):
        return self.session.get(self.base + path, params=params, timeout=10)

    def post(self, path, body):
        return self.session.post(self.base + path, json=body, timeout=10)

    def customer(self, email, **params):
        r = self.get("/customers", customer_email=email, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def order(self, order_id, status, total=15000, email="ann@example.com", **extra):
        return self.post("/orders", {"customer_email": email, "order_id": order_id, "total_amount_cents": total,
                                     "currency_code": "USD", "status": status, **extra})

    def state(self):
        return requests.get(self.sim.base_url + "/_sandbox/state", timeout=10).json()


@pytest.fixture
def api(tmp_path):
    root = write_fixtures(tmp_path / "fx", [PLANTED], TIERS, OPTIONS)
    with serve_in_thread(make_sim(root)) as sim:
        yield Api(sim)


# ---- auth ------------------------------------------------------------------------------------------
def test_auth_headers_any_case_query_params_and_merchant_id(api):
    base, email = api.base + "/customers", {"customer_email": "planted@example.com"}
    accepted = [
        requests.get(base, params=email, headers={"X-GUID": GUID, "X-API-KEY": KEY}),
        requests.get(base, params=email, headers={"x-guid": GUID, "x-api-key": KEY}),
        requests.get(base, params={**email, "guid": GUID, "api_key": KEY}),
        requests.get(base, params={**email, "merchant_id": MERCHANT, "api_key": KEY}),
        requests.get(base, params=email, headers={"x-merchant-id": MERCHANT, "x-api-key": KEY}),
    ]
    assert [r.status_code for r in accepted] == [200] * 5
    assert {r.json()["email"] for r in accepted} == {"planted@example.com"}
    refused = [
        requests.get(base, params=email),
        requests.get(base, params=email, headers={"x-guid": GUID, "x-api-key": "wrong"}),
        requests.get(base, params=email, headers={"x-guid": "other-guid", "x-api-key": KEY}),
        requests.get(base, params={**email, "guid": GUID}),
        requests.post(api.base + "/orders", json={"order_id": "x"}),
    ]
    for r in refused:
        assert r.status_code == 401
        assert list(r.json()) == ["error"] and "Unauthorized" in r.json()["error"]
    assert api.state()["orders"] == []


def test_env_vars_point_at_the_api():
    sim = make_sim()
    assert sim.env_vars("http://127.0.0.1:8705") == {
        "YOTPO_GUID": GUID, "YOTPO_API_KEY": KEY, "YOTPO_API_URL": "http://127.0.0.1:8705/api/v2"}


# ---- customers -------------------------------------------------------------------------------------
def test_fixture_customer_served_as_given_with_referral_and_history_only_on_request(api):
    plain = api.customer("planted@example.com")
    assert plain["points_balance"] == "lots" and plain["vip_tier_name"] == "Platinum"
    assert "referral_code" not in plain and "history_items" not in plain
    full = api.customer("planted@example.com", with_referral_code="true", with_history="true")
    assert full["referral_code"] == {"code": "PAT9", "expired": False}
    assert full["history_items"] == PLANTED["history_items"]
    assert api.get("/customers", customer_id="sf-9").json()["email"] == "planted@example.com"
    assert api.get("/customers", phone_number="+15550009").json()["email"] == "planted@example.com"
    assert api.get("/customers", customer_email="PLANTED@example.com").json()["email"] == "planted@example.com"
    missing = api.get("/customers", customer_email="nobody@example.com")
    assert missing.status_code == 404 and missing.json() == {"error": "Customer not found"}
    no_id = api.get("/customers")
    assert no_id.status_code == 422 and no_id.json() == {"error": "customer_email or customer_id is required"}


def test_customer_upsert_opt_in_and_email_change(api):
    r = api.post("/customers", {"email": "ann@example.com", "id": "c-1", "first_name": "Ann", "opted_in": True,
                                "has_account": True, "tags": "vip,eu"})
    assert r.status_code == 200
    created = r.json()
    assert created["email"] == "ann@example.com" and created["third_party_id"] == "c-1"
    assert created["opt_in"] is True and created["opted_in_at"] and created["has_store_account"] is True
    assert created["points_balance"] == 0 and created["vip_tier_name"] == "Bronze"
    updated = api.post("/customers", {"email": "ann@example.com", "last_name": "Lee", "opt_in": False}).json()
    assert (updated["first_name"], updated["last_name"], updated["opt_in"], updated["opted_in_at"]) == \
        ("Ann", "Lee", False, None)
    assert updated["tags"] == "vip,eu"
    api.order("o-1", "paid")
    moved = api.post("/customers", {"email": "ann.lee@example.com", "id": "c-1"}).json()
    assert moved["email"] == "ann.lee@example.com" and moved["points_balance"] == 150
    assert api.get("/customers", customer_email="ann@example.com").json()["email"] == "ann.lee@example.com"
    api.post("/refunds", {"id": "r-1", "order_id": "o-1", "total_amount_cents": 15000})
    assert api.customer("ann.lee@example.com")["points_balance"] == 0
    emails = [c["email"] for c in api.state()["customers"]]
    assert "ann.lee@example.com" in emails and "ann@example.com" not in emails
    for bad, message in [({"first_name": "x"}, "email is required"),
                         ({"email": "not-an-email"}, "email must be an email address, got 'not-an-email'"),
                         ({"email": "b@example.com", "opt_in": "maybe"}, "opt_in must be true or false, got 'maybe'")]:
        r = api.post("/customers", bad)
        assert r.status_code == 422 and r.json() == {"error": message}
    taken = api.post("/customers", {"email": "planted@example.com", "id": "c-1"})
    assert taken.status_code == 422 and "already belongs" in taken.json()["error"]


def test_referral_code_created_once_and_link_format(tmp_path):
    with serve_in_thread(make_sim()) as sim:
        api = Api(sim)
        api.post("/customers", {"email": "zoe@example.com", "first_name": "Zoë-Ann"})
        first = api.customer("zoe@example.com", with_referral_code="true")["referral_code"]
        assert first["code"] == "ZOANN1000" and first["completed_referral_customers"] == []
        assert api.customer("zoe@example.com", with_referral_code="true")["referral_code"] == first
    with serve_in_thread(make_sim(options={"referral_format": "referral_link"})) as sim:
        api = Api(sim)
        api.post("/customers", {"email": "zoe@example.com"})
        link = api.customer("zoe@example.com", with_referral_code=1)["referral_link"]
        assert link == {"link": "https://rwrd.io/FRIEND1000", "code": "FRIEND1000", "expired": False}


def test_customers_all_pages_by_last_seen_at(tmp_path):
    rows = [{"email": f"c{i:03d}@example.com", "last_seen_at": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z"}
            for i in reversed(range(250))]
    with serve_in_thread(make_sim(write_fixtures(tmp_path, rows), options={"max_per_page": 120})) as sim:
        api = Api(sim)
        pages = [api.get("/customers/all", page=p, per_page=100).json() for p in (1, 2, 3, 4)]
        assert [p["links"] for p in pages] == [{"total_pages": 3}] * 4
        got = [c["email"] for p in pages for c in p["customers"]]
        assert got == [f"c{i:03d}@example.com" for i in range(250)]
        assert [len(p["customers"]) for p in pages] == [100, 100, 50, 0]
        since = api.get("/customers/all", last_seen_at="2025-01-01T00:04:00Z", per_page=5).json()
        assert since["links"] == {"total_pages": 2}
        assert [c["email"] for c in since["customers"]] == [f"c{i}@example.com" for i in range(240, 245)]
        assert len(api.get("/customers/all", per_page=1000).json()["customers"]) == 120  # clamped
        assert len(api.get("/customers/all").json()["customers"]) == 100  # default per_page
        api.order("late-1", "paid", email="c000@example.com")  # points moved, seen now: last
        last = api.get("/customers/all", page=3, per_page=100).json()["customers"]
        assert last[-1]["email"] == "c000@example.com"
        for params, message in [({"page": 0}, "page must be >= 1, got 0"),
                                ({"per_page": "ten"}, "per_page must be an integer, got 'ten'"),
                                ({"last_seen_at": "yesterday"}, "last_seen_at must be a date-time")]:
            r = api.get("/customers/all", **params)
            assert r.status_code == 422 and r.json()["error"].startswith(message)


# ---- orders ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy,statuses", [("accept", [200, 200, 200]), ("ignore", [200, 200, 200]),
                                             ("reject", [200, 409, 409])])
def test_points_awarded_once_per_order_id_under_each_policy(policy, statuses):
    with serve_in_thread(make_sim(options={"duplicate_order": policy})) as sim:
        api = Api(sim)
        responses = [api.order("o-1", "paid"), api.order("o-1", "paid"), api.order("o-1", "completed")]
        assert [r.status_code for r in responses] == statuses
        assert responses[0].json() == {}
        if policy == "reject":
            assert responses[1].json() == {"error": "Order o-1 already exists"}
        customer = api.customer("ann@example.com", with_history="true")
        assert (customer["points_balance"], customer["points_earned"], customer["total_purchases"]) == (150, 150, 1)
        assert [h["points"] for h in customer["history_items"]] == [150]
        [order] = api.state()["orders"]
        assert order["status"] == ("completed" if policy == "accept" else "paid")
        assert order["points_awarded"] == 150


def test_status_change_pending_to_paid_awards_once_and_ignore_keeps_pending():
    with serve_in_thread(make_sim()) as sim:
        api = Api(sim)
        api.order("o-1", "pending", total="20000")
        assert api.customer("ann@example.com")["points_balance"] == 0
        api.order("o-1", "paid", total="20000")
        api.order("o-1", "paid", total="20000")
        api.order("o-1", "complete", total="25000")  # a later total change awards nothing more
        customer = api.customer("ann@example.com")
        assert (customer["points_balance"], customer["total_spend_cents"]) == (200, 25000)
    with serve_in_thread(make_sim(options={"duplicate_order": "ignore"})) as sim:
        api = Api(sim)
        api.order("o-1", "pending")
        assert api.order("o-1", "paid").status_code == 200
        assert api.customer("ann@example.com")["points_balance"] == 0
        assert api.state()["orders"][0]["status"] == "pending"


def test_cancellation_reverses_points_and_never_reawards():
    with serve_in_thread(make_sim()) as sim:
        api = Api(sim)
        api.order("o-1", "paid", total=15000)
        api.order("o-2", "paid", total=5000)
        assert api.customer("ann@example.com")["points_balance"] == 200
        api.order("o-1", "cancelled", total=15000)
        api.order("o-1", "paid", total=15000)
        customer = api.customer("ann@example.com", with_history="true")
        assert (customer["points_balance"], customer["points_earned"]) == (50, 50)
        assert (customer["total_spend_cents"], customer["total_purchases"]) == (5000, 1)
        assert [(h["action"], h["points"]) for h in customer["history_items"]] == [
            ("Made a purchase", 150), ("Made a purchase", 50), ("Order cancelled", -150)]
        order = next(o for o in api.state()["orders"] if o["order_id"] == "o-1")
        assert order["cancelled_at"] and order["points_credited"] == 0 and order["points_awarded"] == 150


def test_order_auto_creates_customer_and_accepts_string_amounts():
    with serve_in_thread(make_sim(options={"points_per_currency_unit": 2})) as sim:
        api = Api(sim)
        r = api.post("/orders", {
            "customer_email": "new@example.com", "customer_id": "sf-77", "order_id": 501, "status": "paid",
            "total_amount_cents": "12345", "currency_code": "EUR", "created_at": "2019-05-25 20:59:53",
            "billing_address": {"first_name": "Nia", "last_name": "Obi"},
            "customer": {"has_account": True, "opt_in": True},
            "items": [{"id": "sku-1", "name": "Mug", "quantity": 2, "price_cents": "6000"}]})
        assert r.status_code == 200
        customer = api.get("/customers", customer_id="sf-77").json()
        assert customer["email"] == "new@example.com" and customer["points_balance"] == 246
        assert (customer["first_name"], customer["last_name"], customer["has_store_account"], customer["opt_in"]) == \
            ("Nia", "Obi", True, True)
        assert customer["last_purchase_at"] == "2019-05-25T20:59:53.000Z"
        [order] = api.state()["orders"]
        assert order["order_id"] == "501" and order["total_amount_cents"] == "12345"
        assert order["loyalty_customer_email"] == "new@example.com"


ORDER_422 = [
    ({"order_id": None}, "order_id is required"),
    ({"customer_email": "nobody"}, "customer_email must be an email address, got 'nobody'"),
    ({"total_amount_cents": "150.50"}, "total_amount_cents must be an integer, got '150.50'"),
    ({"total_amount_cents": -100}, "total_amount_cents must be >= 0, got -100"),
    ({"total_amount_cents": True}, "total_amount_cents must be an integer"),
    ({"currency_code": "usd"}, "currency_code must be a three-letter ISO 4217 code such as USD, got 'usd'"),
    ({"currency_code": "DOLLARS"}, "currency_code must be a three-letter ISO 4217 code such as USD, got 'DOLLARS'"),
    ({"tax_amount_cents": "ten"}, "tax_amount_cents must be an integer, got 'ten'"),
    ({"items": [{"price_cents": 1.5}]}, "items[0].price_cents must be an integer, got 1.5"),
    ({"items": [{"quantity": 0}]}, "items[0].quantity must be >= 1, got 0"),
    ({"items": {"id": "x"}}, "items must be an array"),
    ({"created_at": "soon"}, "created_at must be a date-time such as 2019-05-25 20:59:53, got 'soon'"),
]


def test_order_validation_422():
    with serve_in_thread(make_sim()) as sim:
        api = Api(sim)
        for change, message in ORDER_422:
            body = {"customer_email": "ann@example.com", "order_id": "o-1", "total_amount_cents": 100,
                    "currency_code": "USD", "status": "paid", **change}
            r = api.post("/orders", {k: v for k, v in body.items() if v is not None})
            assert (r.status_code, r.json()) == (422, {"error": message})
        state = api.state()
        assert state["orders"] == [] and state["customers"] == []


def test_malformed_bodies_are_400_and_unknown_routes_404(api):
    bad_json = api.session.post(api.base + "/orders", data=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json() == {"error": "request body is not valid JSON"}
    array = api.post("/orders", [1, 2])
    assert array.status_code == 400 and array.json() == {"error": "request body must be a JSON object"}
    missing = api.get("/campaigns")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    assert "ratelimit-limit" not in missing.headers  # rate limit off: no rate-limit headers
    wrong_method = api.session.delete(api.base + "/orders")
    assert wrong_method.status_code == 404 and wrong_method.json() == {"error": "Not Found"}


def test_form_encoded_order_with_query_credentials(api):
    """The WooCommerce plugin style: credentials in the query string, a flat form body."""
    r = requests.post(f"{api.base}/orders?guid={GUID}&api_key={KEY}",
                      data={"customer_email": "wc@example.com", "order_id": "wc-1", "total_amount_cents": "9900",
                            "currency_code": "USD", "status": "completed"})
    assert r.status_code == 200
    assert api.customer("wc@example.com")["points_balance"] == 99


# ---- refunds ---------------------------------------------------------------------------------------
def test_partial_refunds_reverse_proportionally_and_repeats_are_noops():
    with serve_in_thread(make_sim()) as sim:
        api = Api(sim)
        api.order("o-1", "paid", total=15000)
        assert api.post("/refunds", {"id": "r-1", "order_id": "o-1", "total_amount_cents": 5000,
                                     "currency": "USD"}).status_code == 200
        assert api.customer("ann@example.com")["points_balance"] == 100
        assert api.post("/refunds", {"id": "r-1", "order_id": "o-1", "total_amount_cents": 5000}).status_code == 200
        assert api.customer("ann@example.com")["points_balance"] == 100
        api.post("/refunds", {"id": "r-2", "order_id": "o-1", "total_amount_cents": "2500"})
        customer = api.customer("ann@example.com")
        assert (customer["points_balance"], customer["points_earned"], customer["total_spend_cents"]) == (75, 75, 7500)
        over = api.post("/refunds", {"id": "r-3", "order_id": "o-1", "total_amount_cents": 7501})
        assert over.status_code == 422
        assert over.json() == {"error": "refund of 7501 cents exceeds the refundable amount 7500 cents of order o-1"}
        api.post("/refunds", {"id": "r-4", "order_id": "o-1", "total_amount_cents": 7500})
        assert api.customer("ann@example.com")["points_balance"] == 0
        state = api.state()
        assert [(r["id"], r["points_reversed"]) for r in state["refunds"]] == [("r-1", 50), ("r-2", 25), ("r-4", 75)]
        assert state["orders"][0]["refunded_amount_cents"] == 15000
        assert state["request_counts"]["POST /api/v2/refunds"] == 5


def test_refund_errors_and_refunds_before_the_award():
    with serve_in_thread(make_sim(options={"multi_currency": True})) as sim:
        api = Api(sim)
        api.order("o-1", "pending", total=10000)
        cases = [
            ({"order_id": "o-1", "total_amount_cents": 100, "currency": "EUR"}, 422,
             "currency EUR does not match the order's currency USD"),
            ({"order_id": "o-1", "total_amount_cents": 100}, 422, "currency is required on multi-currency accounts"),
            ({"order_id": "nope", "total_amount_cents": 100, "currency": "USD"}, 404, "Order nope not found"),
            ({"order_id": "o-1", "currency": "USD"}, 422, "total_amount_cents is required"),
            ({"order_id": "o-1", "total_amount_cents": 0, "currency": "USD"}, 422,
             "total_amount_cents must be >= 1, got 0"),
        ]
        for body, status, message in cases:
            r = api.post("/refunds", body)
            assert (r.status_code, r.json()) == (status, {"error": message})
        assert api.state()["refunds"] == []
        api.post("/refunds", {"order_id": "o-1", "total_amount_cents": 4000, "currency": "USD"})
        api.order("o-1", "paid", total=10000)
        assert api.customer("ann@example.com")["points_balance"] == 60
        [refund] = api.state()["refunds"]
        assert refund["id"] == "yotpo-refund-1" and refund["points_reversed"] == 0


def test_commerce_cloud_refund_path():
    with serve_in_thread(make_sim()) as sim:
        api = Api(sim)
        api.order("o-1", "paid", total=10000)
        r = api.session.post(sim.base_url + "/commerce-cloud/refunds",
                             json={"id": "r-9", "order_id": "o-1", "total_amount_cents": 10000})
        assert r.status_code == 200 and api.customer("ann@example.com")["points_balance"] == 0


# ---- points and VIP tiers --------------------------------------------------------------------------
def test_points_adjust(api):
    api.post("/customers", {"email": "ann@example.com", "id": "c-1"})
    r = api.post("/points/adjust", {"customer_id": "c-1", "point_adjustment_amount": 300,
                                    "apply_adjustment_to_points_earned": True, "history_title": "Welcome bonus"})
    assert r.status_code == 200 and (r.json()["points_balance"], r.json()["points_earned"]) == (300, 300)
    assert r.json()["vip_tier_name"] == "Silver"
    spent = api.post("/points/adjust", {"customer_email": "ann@example.com", "point_adjustment_amount": "-250"})
    assert (spent.json()["points_balance"], spent.json()["points_earned"]) == (50, 300)
    short = api.post("/points/adjust", {"customer_email": "ann@example.com", "point_adjustment_amount": -51})
    assert short.status_code == 422 and short.json() == {"error": "Insufficient points: balance 50, adjustment -51"}
    unknown = api.post("/points/adjust", {"customer_email": "x@example.com", "point_adjustment_amount": 5})
    assert unknown.status_code == 404 and unknown.json() == {"error": "Customer not found"}
    bad = api.post("/points/adjust", {"customer_email": "ann@example.com", "point_adjustment_amount": "5.5"})
    assert bad.status_code == 422
    api.post("/points/adjust", {"customer_email": "ann@example.com", "point_adjustment_amount": 1,
                                "visible_to_customer": False})
    history = api.customer("ann@example.com", with_history="true")["history_items"]
    assert [(h["action"], h["points"]) for h in history] == [("Welcome bonus", 300), ("Points adjustment", -250)]
    assert api.customer("ann@example.com")["points_balance"] == 51


def test_vip_tier_follows_points_and_spend(api):
    assert [t["name"] for t in api.get("/vip_tiers").json()] == ["Bronze", "Silver", "Gold"]
    api.order("o-1", "paid", total=15000)
    customer = api.customer("ann@example.com")
    assert customer["vip_tier_name"] == "Bronze"
    assert customer["vip_tier_upgrade_requirements"] == {"points_needed": 50}
    api.order("o-2", "paid", total=6000)
    customer = api.customer("ann@example.com")
    assert customer["vip_tier_name"] == "Silver" and customer["vip_tier_entry_date"]
    assert customer["vip_tier_upgrade_requirements"] == {"points_needed": 790, "amount_cents_needed": 59000}
    api.order("o-3", "paid", total=60000)  # spend 81000 >= 80000: Gold by spend alone
    assert api.customer("ann@example.com")["vip_tier_name"] == "Gold"
    api.post("/refunds", {"id": "r-1", "order_id": "o-3", "total_amount_cents": 60000})
    customer = api.customer("ann@example.com")
    assert (customer["vip_tier_name"], customer["points_balance"]) == ("Silver", 210)


def test_tier_multiplier_option(tmp_path):
    root = write_fixtures(tmp_path, [{"email": "ann@example.com", "points_earned": 500, "points_balance": 500}], TIERS)
    with serve_in_thread(make_sim(root, options={"apply_tier_multiplier": True})) as sim:
        api = Api(sim)
        api.order("o-1", "paid", total=10000)
        assert api.customer("ann@example.com")["points_balance"] == 650


def test_redemption_options_filtered_by_balance(api):
    assert api.get("/redemption_options").json() == OPTIONS
    api.post("/points/adjust", {"customer_email": "planted@example.com", "point_adjustment_amount": 700})
    affordable = api.get("/redemption_options", customer_email="planted@example.com").json()
    assert [o["id"] for o in affordable] == [11]
    assert api.get("/redemption_options", customer_email="x@example.com").status_code == 404


# ---- rate limit ------------------------------------------------------------------------------------
def test_token_bucket_burst_gets_429_and_paced_requests_never_do():
    with serve_in_thread(make_sim(rate_limit={})) as sim:
        api = Api(sim)
        burst = [api.get("/vip_tiers") for _ in range(12)]
        statuses = [r.status_code for r in burst]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
        assert [r.headers["ratelimit-remaining"] for r in burst[:5]] == ["4", "3", "2", "1", "0"]
        for r in burst:
            assert all(h in r.headers for h in RATE_HEADERS)
            assert r.headers["ratelimit-limit"] == "5" and r.headers["x-ratelimit-limit-minute"] == "300"
        throttled = next(r for r in burst if r.status_code == 429)
        assert throttled.json() == {"error": "API rate limit exceeded"}
        assert (throttled.headers["ratelimit-remaining"], throttled.headers["ratelimit-reset"],
                throttled.headers["retry-after"]) == ("0", "1", "1")
        time.sleep(1.05)  # refill
        start = time.monotonic()
        paced = []
        for i in range(6):  # 5 requests per second, evenly spaced
            time.sleep(max(0.0, start + i * 0.2 - time.monotonic()))
            paced.append(api.get("/vip_tiers").status_code)
        assert paced == [200] * 6
        not_found = api.get("/campaigns")
        assert not_found.status_code == 404 and all(h in not_found.headers for h in RATE_HEADERS)
        assert int(not_found.headers["x-ratelimit-remaining-minute"]) == 300 - statuses.count(200) - 6 - 1


def test_minute_window_and_401_headers():
    with serve_in_thread(make_sim(rate_limit={"requests_per_second": 50, "requests_per_minute": 3})) as sim:
        api = Api(sim)
        responses = [api.get("/vip_tiers") for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining-minute"] for r in responses] == ["2", "1", "0", "0"]
        assert responses[3].headers["ratelimit-limit"] == "3" and int(responses[3].headers["retry-after"]) > 50
        unauthorized = requests.get(api.base + "/vip_tiers")
        assert unauthorized.status_code == 401 and all(h in unauthorized.headers for h in RATE_HEADERS)


# ---- faults ----------------------------------------------------------------------------------------
def test_injected_429_has_yotpo_headers_and_changes_nothing():
    sim = make_sim(rate_limit={}, faults=FaultSpec(p_429=1.0, retry_after_seconds=3))
    with serve_in_thread(sim):
        api = Api(sim)
        r = api.order("o-1", "paid")
        assert r.status_code == 429 and r.json() == {"error": "API rate limit exceeded"}
        assert (r.headers["ratelimit-remaining"], r.headers["ratelimit-reset"], r.headers["retry-after"]) == \
            ("0", "3", "3")
        assert all(h in r.headers for h in RATE_HEADERS)
        assert api.state()["orders"] == [] and api.state()["request_counts"] == {"POST /api/v2/orders": 1}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_injected_5xx_use_the_error_body(status):
    sim = make_sim(rate_limit={}, faults=FaultSpec(**{f"p_{status}": 1.0}))
    with serve_in_thread(sim):
        api = Api(sim)
        r = api.order("o-1", "paid")
        assert r.status_code == status and list(r.json()) == ["error"] and "injected" in r.json()["error"]
        assert all(h in r.headers for h in RATE_HEADERS)
        assert api.state()["orders"] == []


def test_slow_order_is_applied_and_the_retry_awards_nothing_more():
    sim = make_sim(faults=FaultSpec(p_slow=1.0, slow_seconds=0.6))
    with serve_in_thread(sim):
        api = Api(sim)
        with pytest.raises(requests.exceptions.ReadTimeout):
            api.session.post(api.base + "/orders", timeout=0.2, json={
                "customer_email": "ann@example.com", "order_id": "o-1", "total_amount_cents": 15000, "status": "paid"})
        requests.post(sim.base_url + "/_sandbox/faults", json={"p_slow": 0})
        assert api.order("o-1", "paid").status_code == 200
        assert api.customer("ann@example.com")["points_balance"] == 150


# ---- state, config, persistence ---------------------------------------------------------------------
def test_state_shape_persistence_and_reset(tmp_path):
    root = write_fixtures(tmp_path / "fx", [PLANTED], TIERS, OPTIONS)
    state_dir = tmp_path / "state"
    with serve_in_thread(make_sim(root, state_dir=state_dir)) as sim:
        api = Api(sim)
        api.order("o-1", "paid")
        api.post("/refunds", {"id": "r-1", "order_id": "o-1", "total_amount_cents": 1500})
        state = api.state()
        assert set(state) == {"customers", "orders", "refunds", "vip-tiers", "redemption-options",
                              "customer_email_changes", "request_counts"}
        ann = next(c for c in state["customers"] if c["email"] == "ann@example.com")
        assert (ann["points_balance"], ann["vip_tier_name"]) == (135, "Bronze")
        assert state["orders"][0]["order_id"] == "o-1" and state["refunds"][0]["id"] == "r-1"
        assert state["vip-tiers"] == TIERS and state["redemption-options"] == OPTIONS
        assert state["request_counts"] == {"POST /api/v2/orders": 1, "POST /api/v2/refunds": 1}
    with serve_in_thread(make_sim(root, state_dir=state_dir)) as sim:
        api = Api(sim)
        assert api.customer("ann@example.com")["points_balance"] == 135
        api.order("o-1", "paid")  # still known after the restart: no second award
        assert api.customer("ann@example.com")["points_balance"] == 135
        requests.post(sim.base_url + "/_sandbox/reset")
        state = api.state()
        assert [c["email"] for c in state["customers"]] == ["planted@example.com"] and state["orders"] == []


def test_runtime_options_and_admin_customer_upsert(api):
    r = requests.post(api.sim.base_url + "/_sandbox/faults", json={"options": {"duplicate_order": "reject"}})
    assert r.json()["options"] == {"duplicate_order": "reject"}
    api.order("o-1", "paid")
    assert api.order("o-1", "paid").status_code == 409
    r = requests.post(api.sim.base_url + "/_sandbox/faults", json={"options": {"duplicate_order": "sometimes"}})
    assert r.status_code == 400 and "duplicate_order" in r.json()["error"]  # refused
    assert requests.get(api.sim.base_url + "/_sandbox/faults").json()["options"]["duplicate_order"] == "reject"
    r = requests.post(api.sim.base_url + "/_sandbox/records", json={
        "collection": "customers", "records": [{"email": "ann@example.com", "points_earned": 1200}]})
    stored = r.json()["records"][0]
    assert stored["vip_tier_name"] == "Gold" and stored["points_balance"] == 150
    assert api.get("/customers/all", per_page=500).json()["customers"][-1]["email"] == "ann@example.com"
