"""Friendbuy MAPI simulator over real HTTP: auth, customers, events and duplicate policies,
attribution into the exports, analytics paging, error envelopes, faults, rate limit and state."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
import requests

from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.core.stamps import fmt_iso_millis_z, parse_any
from referral_pipeline.sandbox.friendbuy import FriendbuySimulator
from referral_pipeline.sandbox.friendbuy.auth import b64url_decode
from referral_pipeline.sandbox.testing import serve_in_thread

WIDE = {"fromDate": "2000-01-01T00:00:00Z", "toDate": "2100-01-01T00:00:00Z"}
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


class Mapi:
    """A minimal MAPI client: one session holding a bearer token."""

    def __init__(self, sim: FriendbuySimulator, bearer: bool = True):
        self.sim, self.url = sim, sim.base_url
        self.http = requests.Session()
        token = self.authorize().json()["token"]
        self.http.headers["Authorization"] = f"Bearer {token}" if bearer else token

    def authorize(self, **override):
        body = {"key": self.sim.credentials["key"], "secret": self.sim.credentials["secret"], **override}
        return requests.post(f"{self.url}/v1/authorization", json=body)

    def post(self, path, body):
        return self.http.post(f"{self.url}/v1/{path}", json=body)

    def get(self, report, **params):
        return self.http.get(f"{self.url}/v1/analytics/{report}", params=params)

    def pages(self, report, **params):
        """Every page of an export: list of response bodies."""
        out = []
        while True:
            r = self.get(report, **params)
            assert r.status_code == 200, r.text
            out.append(r.json())
            if "nextPageToken" not in out[-1]:
                return out
            params = {"pageToken": out[-1]["nextPageToken"]}

    def state(self):
        return requests.get(f"{self.url}/_sandbox/state").json()


def envelope(status_name, message, reference=""):
    return {"error": status_name, "message": message, "code": 0, "reference": reference}


def write_fixtures(root: Path, collections: dict[str, list[dict]]) -> Path:
    folder = root / "friendbuy"
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in collections.items():
        (folder / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return root


@pytest.fixture
def serve():
    """``serve(**sim_kwargs)`` -> (sim, Mapi client); every simulator stops after the test."""
    stack = []

    def start(options=None, rate_limit=None, faults=None, data_root=None, state_dir=None):
        cfg = SystemConfig(options=options or {}, rate_limit=rate_limit or {}, faults=faults or FaultSpec())
        ctx = serve_in_thread(FriendbuySimulator(cfg, data_root=data_root, state_dir=state_dir))
        sim = ctx.__enter__()
        stack.append(ctx)
        return sim, Mapi(sim)
    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


# ---- authentication ----------------------------------------------------------------------------
def test_authorization_issues_20_minute_tokens(serve):
    sim, api = serve()
    before = datetime.now(timezone.utc).replace(microsecond=0)  # expires is rendered to the millisecond
    r = api.authorize()
    assert r.status_code == 200 and set(r.json()) == {"tokenType", "token", "expires"}
    body = r.json()
    assert body["tokenType"] == "Bearer"
    assert body["expires"].endswith("Z") and len(body["expires"]) == len("2025-01-01T00:20:00.000Z")
    expires = parse_any(body["expires"])
    assert timedelta(minutes=20) <= expires - before < timedelta(minutes=20, seconds=2)
    claims = orjson.loads(b64url_decode(body["token"].split(".")[1]))
    assert claims["exp"] - claims["iat"] == 1200 and claims["merchantId"] == sim.credentials["merchant_id"]


def test_authorization_errors(serve):
    sim, api = serve()
    r = api.authorize(secret="wrong")
    assert (r.status_code, r.json()) == (401, envelope("Unauthorized", "Unauthorized"))
    r = requests.post(f"{api.url}/v1/authorization", json={"key": sim.credentials["key"]})
    assert (r.status_code, r.json()) == (422, envelope("Unprocessable Entity", '"secret" is required'))
    r = requests.post(f"{api.url}/v1/authorization", data=b'{"key": ', headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "Bad Request")


def test_bearer_and_raw_tokens_are_accepted_and_bad_ones_refused(serve):
    sim, api = serve()
    raw = Mapi(sim, bearer=False)
    assert not raw.http.headers["Authorization"].startswith("Bearer")
    for client in (api, raw):
        assert client.get("shares", **WIDE).status_code == 200
    unauthorized = (401, envelope("Unauthorized", "Unauthorized"))
    for header in (None, "Bearer", "Bearer not.a.token", "Basic dXNlcjpwYXNz"):
        headers = {"Authorization": header} if header else {}
        r = requests.get(f"{api.url}/v1/analytics/shares", params=WIDE, headers=headers)
        assert (r.status_code, r.json()) == unauthorized
        r = requests.post(f"{api.url}/v1/customer", json={"email": "a@b.co", "customerId": "c1"}, headers=headers)
        assert (r.status_code, r.json()) == unauthorized
    assert sim.collections["customers"].get("c1") is None


def test_tokens_expire_after_20_minutes_of_simulator_time(serve):
    sim, api = serve()
    offset = {"minutes": 0}
    sim.now = lambda: datetime.now(timezone.utc) + timedelta(minutes=offset["minutes"])
    assert api.get("shares", **WIDE).status_code == 200
    offset["minutes"] = 19
    assert api.get("shares", **WIDE).status_code == 200
    offset["minutes"] = 21
    r = api.get("shares", **WIDE)
    assert (r.status_code, r.json()) == (401, envelope("Unauthorized", "Unauthorized"))
    fresh = Mapi(sim)  # re-authenticating gives a token valid at the (advanced) clock
    assert fresh.get("shares", **WIDE).status_code == 200


def test_short_token_ttl_option(serve):
    sim, api = serve(options={"token_ttl_seconds": 1})
    assert api.get("shares", **WIDE).status_code == 200
    time.sleep(1.1)
    assert api.get("shares", **WIDE).status_code == 401


# ---- customers ---------------------------------------------------------------------------------
def test_customer_created_then_updated(serve):
    sim, api = serve()
    first = api.post("customer", {"email": "ann@example.com", "customerId": "cust-1", "firstName": "Ann",
                                  "additionalProperties": {"sfContactId": "003A", "bad": 5}})
    assert first.status_code == 201 and set(first.json()) == {"eventId", "createdOn"}
    second = api.post("customer", {"email": "ann@example.com", "customerId": "cust-1", "lastName": "Lee",
                                   "birthday": {"day": 3, "month": 4}})
    assert second.status_code == 200 and second.json()["eventId"] != first.json()["eventId"]
    [customer] = api.state()["customers"]
    assert customer == {"email": "ann@example.com", "customerId": "cust-1", "firstName": "Ann", "lastName": "Lee",
                        "additionalProperties": {"sfContactId": "003A"}, "birthday": {"day": 3, "month": 4},
                        "createdOn": first.json()["createdOn"], "updatedOn": second.json()["createdOn"]}


def test_customer_validation_errors(serve):
    sim, api = serve()
    r = api.post("customer", {"email": "ann@example.com"})
    assert (r.status_code, r.json()) == (422, envelope("Unprocessable Entity", '"customerId" is required'))
    r = api.post("customer", {"email": "ann@example.com", "customerId": "c", "age": "old"})
    assert (r.status_code, r.json()) == (422, envelope("Unprocessable Entity", '"age" must be an integer'))
    r = api.http.post(f"{api.url}/v1/customer", data=b"{not json", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (400, envelope("Bad Request", "Invalid input, object invalid: malformed JSON"))
    r = api.post("customer", [{"email": "ann@example.com", "customerId": "c"}])
    assert (r.status_code, r.json()) == (400, envelope("Bad Request", "Invalid input, object invalid"))
    assert api.state()["customers"] == []


def test_unknown_url_is_404_with_the_envelope(serve):
    sim, api = serve()
    for method, path in [("GET", "/openapi.json"), ("GET", "/v1/analytics/rewards/referral"),
                         ("GET", "/v1/customer"), ("POST", "/v1/event/refund")]:
        r = api.http.request(method, f"{api.url}{path}")
        assert (r.status_code, r.json()) == (404, envelope("Not Found", f"Unknown URL {path}"))


# ---- events ------------------------------------------------------------------------------------
PURCHASE = {"orderId": "sf:801A", "customerId": "cust-9", "email": "friend@example.com", "amount": 80.5,
            "currency": "USD", "isNewCustomer": True, "products": [{"sku": "S1", "name": "Sock", "quantity": 2,
                                                                    "price": 40.25}]}


@pytest.mark.parametrize("policy,second_status", [("accept", 201), ("ignore", 200), ("reject", 409)])
def test_duplicate_purchase_policies(serve, policy, second_status):
    sim, api = serve(options={"duplicate_purchase": policy})
    first = api.post("event/purchase", PURCHASE)
    assert first.status_code == 201
    second = api.post("event/purchase", {**PURCHASE, "amount": 99})
    assert second.status_code == second_status
    stored = api.state()["events"]["purchase"]
    if policy == "accept":
        assert [e["amount"] for e in stored] == [80.5, 99]
        assert second.json()["eventId"] != first.json()["eventId"]
    elif policy == "ignore":
        assert second.json() == first.json() and len(stored) == 1
    else:
        assert second.json() == envelope("Conflict", "A purchase with orderId sf:801A has already been tracked")
        assert len(stored) == 1
    assert stored[0] == {**PURCHASE, **first.json()}
    assert api.post("event/purchase", {**PURCHASE, "orderId": "sf:801B"}).status_code == 201


def test_duplicate_policy_can_change_at_run_time(serve):
    sim, api = serve()
    assert api.post("event/purchase", PURCHASE).status_code == 201
    assert api.post("event/purchase", PURCHASE).status_code == 201  # default: accept
    r = requests.post(f"{api.url}/_sandbox/faults", json={"options": {"duplicate_purchase": "reject"}})
    assert r.json()["options"] == {"duplicate_purchase": "reject"}
    assert api.post("event/purchase", PURCHASE).status_code == 409
    assert len(api.state()["events"]["purchase"]) == 2


def test_invalid_run_time_option_is_refused_and_rolled_back(serve):
    sim, api = serve(options={"duplicate_purchase": "ignore"})
    r = requests.post(f"{api.url}/_sandbox/faults", json={"options": {"duplicate_purchase": "sometimes"}})
    assert r.status_code == 400 and "duplicate_purchase" in r.json()["error"]
    assert sim.config.options == {"duplicate_purchase": "ignore"} and sim.settings.duplicate_purchase == "ignore"
    assert requests.post(f"{api.url}/_sandbox/reset").status_code == 200


def test_purchase_validation_and_segment_shapes(serve):
    sim, api = serve()
    segment_like = {k: v for k, v in PURCHASE.items() if k != "customerId"}  # Segment may omit customerId
    r = api.post("event/purchase", segment_like)
    assert (r.status_code, r.json()) == (422, envelope("Unprocessable Entity", '"customerId" is required'))
    r = api.post("event/purchase", {**PURCHASE, "products": [{"name": "no sku"}]})
    assert (r.status_code, r.json()["message"]) == (422, '"products[0].sku" is required')
    assert api.state()["events"]["purchase"] == []


def test_custom_event_deduplication(serve):
    sim, api = serve()
    body = {"eventType": "Download", "email": "a@b.co", "deduplicationId": "1234",
            "additionalProperties": {"customerId": "c1", "fileId": "f"}}
    first = api.post("event/custom", body)
    again = api.post("event/custom", {**body, "additionalProperties": {"fileId": "other"}})
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    other_type = api.post("event/custom", {**body, "eventType": "Review"})
    assert other_type.status_code == 201 and other_type.json()["eventId"] != first.json()["eventId"]
    plain = {"eventType": "Download", "email": "a@b.co"}
    assert api.post("event/custom", plain).json() != api.post("event/custom", plain).json()
    stored = api.state()["events"]["custom"]
    assert [(e["eventType"], e.get("deduplicationId")) for e in stored] == \
        [("Download", "1234"), ("Review", "1234"), ("Download", None), ("Download", None)]
    assert stored[0]["additionalProperties"] == {"customerId": "c1", "fileId": "f"}
    r = api.post("event/custom", {"email": "a@b.co"})
    assert (r.status_code, r.json()["message"]) == (422, '"eventType" is required')


def test_sign_up_event_stored_with_id_and_time(serve):
    sim, api = serve()
    r = api.post("event/account-sign-up", {"email": "new@example.com", "customerId": "c5", "timezone": "Europe/Paris"})
    assert r.status_code == 201
    [event] = api.state()["events"]["account-sign-up"]
    assert event == {"email": "new@example.com", "customerId": "c5", "timezone": "Europe/Paris", **r.json()}
    assert api.state()["account-sign-ups"] == []  # not attributed: no referral sign-up row


# ---- attribution into the exports ----------------------------------------------------------------
ADVOCATE = {"advocateCustomerId": "adv-1", "advocateEmail": "Advocate@Example.com", "advocateName": "Ada Vo",
            "campaignId": "camp-us", "campaignName": "US referral"}


def referral_world(tmp_path):
    return write_fixtures(tmp_path, {
        "shares": [{**ADVOCATE, "channel": "email", "referralCode": "ada10", "createdOn": "2025-01-01T00:00:00.000Z",
                    "userAgent": "UA", "ipAddress": "1.1.1.1"},
                   {"advocateCustomerId": "adv-2", "advocateEmail": "bob@example.com", "advocateName": "Bob",
                    "campaignId": "camp-us", "campaignName": "US referral", "channel": "sms",
                    "referralCode": "bob20", "createdOn": "2025-01-02T00:00:00.000Z"}],
        "clicks": [{**ADVOCATE, "channel": "email", "referralCode": "ada10", "attributionId": "attr-77",
                    "createdOn": "2025-01-01T01:00:00.000Z", "destinationUrl": "https://shop"}],
        "distributed-friend-incentives": [{**ADVOCATE, "incentiveType": "Coupon Code", "incentiveAmount": 10,
                                           "couponCode": "friend-ada-1", "trigger": "email_capture",
                                           "referralCode": "ada10", "channel": "email",
                                           "friendEmail": "friend@example.com",
                                           "createdOn": "2025-01-01T02:00:00.000Z"}],
    })


def test_coupon_purchase_becomes_purchase_row_and_advocate_reward(serve, tmp_path):
    sim, api = serve(data_root=referral_world(tmp_path))
    r = api.post("event/purchase", {**PURCHASE, "couponCode": "FRIEND-ADA-1", "firstName": "Fran", "lastName": "Lee",
                                    "ipAddress": "2.2.2.2"})
    created_on = r.json()["createdOn"]
    [row] = api.get("purchases", **WIDE).json()["results"]
    assert row == {"customerId": "cust-9", "email": "friend@example.com", "name": "Fran Lee",
                   **ADVOCATE, "referralCode": "ada10", "createdOn": created_on, "ipAddress": "2.2.2.2",
                   "newCustomer": True, "amount": 80.5, "couponCode": "FRIEND-ADA-1",
                   "products": [{"sku": "S1", "name": "Sock", "quantity": 2, "price": 40.25}], "orderId": "sf:801A"}
    [reward] = api.get("distributed-advocate-rewards", **WIDE).json()["results"]
    assert reward == {"createdOn": created_on, "rewardType": "Account Credit", "rewardAmount": 20,
                      "trigger": "purchase", "advocateEmail": "Advocate@Example.com", "advocateName": "Ada Vo",
                      "advocateCustomerId": "adv-1", "referralCode": "ada10", "channel": "email",
                      "friendEmail": "friend@example.com", "friendName": "Fran Lee", "friendCustomerId": "cust-9",
                      "campaignId": "camp-us", "campaignName": "US referral"}
    # the stored rows have a synthetic key, the served ones do not
    assert api.state()["purchases"][0]["id"].startswith("purchases-sim-")


def test_attribution_precedence_and_reward_rules(serve, tmp_path):
    sim, api = serve(data_root=referral_world(tmp_path),
                     options={"advocate_reward_amount": 15, "advocate_reward_type": "Coupon Code",
                              "advocate_reward_codes": ["adv-code-1"]})
    buy = lambda order, cust, email, **kw: api.post("event/purchase", {  # noqa: E731
        "orderId": order, "customerId": cust, "email": email, "amount": 50, "currency": "USD", **kw}).status_code
    # coupon wins over a referral code of another advocate; an unknown coupon falls through to the next method
    assert buy("o1", "f1", "f1@x.com", couponCode="friend-ada-1", referralCode="bob20", isNewCustomer=True) == 201
    assert buy("o2", "f2", "f2@x.com", couponCode="NOT-FRIENDBUY", referralCode="BOB20", isNewCustomer=True) == 201
    assert buy("o3", "f3", "f3@x.com", attributionId="attr-77", referralCode="bob20") == 201  # new: no history
    assert buy("o4", "f3", "f3@x.com", referralCode="ada10") == 201  # repeat buyer: no reward
    assert buy("o5", "adv-1", "advocate@example.com", referralCode="ada10", isNewCustomer=True) == 201  # self
    assert buy("o6", "f4", "f4@x.com", referralCode="nobody", isNewCustomer=True) == 201  # unattributed
    assert buy("o7", "f1", "f1@x.com", referralCode="ada10", isNewCustomer=True) == 201  # friend already rewarded
    purchases = api.get("purchases", **WIDE).json()["results"]
    assert [(p["orderId"], p["advocateCustomerId"], p["newCustomer"]) for p in purchases] == [
        ("o1", "adv-1", True), ("o2", "adv-2", True), ("o3", "adv-1", True), ("o4", "adv-1", False),
        ("o5", "adv-1", True), ("o7", "adv-1", True)]
    rewards = api.get("distributed-advocate-rewards", **WIDE).json()["results"]
    assert [(r["friendCustomerId"], r["advocateCustomerId"], r["rewardAmount"], r["rewardType"]) for r in rewards] == [
        ("f1", "adv-1", 15, "Coupon Code"), ("f2", "adv-2", 15, "Coupon Code"), ("f3", "adv-1", 15, "Coupon Code")]
    assert rewards[0]["couponCode"] == "adv-code-1" and rewards[1]["couponCode"].startswith("fbr-")
    assert len(api.state()["events"]["purchase"]) == 7


def test_duplicate_purchase_accept_double_counts_in_the_export(serve, tmp_path):
    sim, api = serve(data_root=referral_world(tmp_path), options={"duplicate_purchase": "accept"})
    body = {**PURCHASE, "referralCode": "ada10"}
    assert api.post("event/purchase", body).status_code == 201
    assert api.post("event/purchase", body).status_code == 201
    assert [p["orderId"] for p in api.get("purchases", **WIDE).json()["results"]] == ["sf:801A", "sf:801A"]
    assert len(api.get("distributed-advocate-rewards", **WIDE).json()["results"]) == 1  # once per friend


def test_auto_reward_off_and_referral_sign_up_row(serve, tmp_path):
    sim, api = serve(data_root=referral_world(tmp_path), options={"auto_reward": False})
    assert api.post("event/purchase", {**PURCHASE, "referralCode": "ada10"}).status_code == 201
    assert api.get("distributed-advocate-rewards", **WIDE).json() == {"totalResults": 0, "results": []}
    r = api.post("event/account-sign-up", {"email": "fr@x.com", "customerId": "f9", "firstName": "Fr",
                                           "attributionId": "attr-77", "userAgent": "UA2"})
    [row] = api.get("account-sign-ups", **WIDE).json()["results"]
    assert row == {"customerId": "f9", "email": "fr@x.com", "name": "Fr", **ADVOCATE, "referralCode": "ada10",
                   "createdOn": r.json()["createdOn"], "userAgent": "UA2", "newCustomer": True, "channel": "email"}


def test_admin_upserted_share_attributes_immediately(serve, tmp_path):
    sim, api = serve(data_root=referral_world(tmp_path))
    assert api.post("event/purchase", {**PURCHASE, "orderId": "x1", "referralCode": "new-code"}).status_code == 201
    assert api.get("purchases", **WIDE).json()["totalResults"] == 0
    r = requests.post(f"{api.url}/_sandbox/records", json={"collection": "shares", "records": [
        {**ADVOCATE, "referralCode": "new-code", "channel": "purl"}]})
    assert r.status_code == 200 and r.json()["records"][0]["id"].startswith("shares-sim-")
    assert api.post("event/purchase", {**PURCHASE, "orderId": "x2", "referralCode": "new-code"}).status_code == 201
    assert [p["orderId"] for p in api.get("purchases", **WIDE).json()["results"]] == ["x2"]
    shares = api.get("shares", **WIDE).json()
    assert shares["totalResults"] == 3 and all("id" not in s for s in shares["results"])


# ---- analytics paging --------------------------------------------------------------------------
def paging_world(tmp_path):
    """27 clicks sharing one createdOn (across page boundaries), plus neighbours around it."""
    same = "2025-01-01T10:00:00.000Z"
    rows = [{"referralCode": f"same-{i:02d}", "channel": "email" if i % 3 else "sms", "createdOn": same,
             "advocateEmail": "A@x.com" if i % 2 else "b@x.com", "campaignId": "camp-us"} for i in range(27)]
    rows.insert(0, {"referralCode": "before", "channel": "email", "createdOn": "2025-01-01T09:59:59.999Z"})
    rows.append({"referralCode": "after", "channel": "email", "createdOn": "2025-01-01T10:00:00.001Z"})
    rows.append({"referralCode": "micro", "channel": "email", "createdOn": "2025-01-01T10:00:00.001500Z"})
    rows.append({"referralCode": "has-own-id", "id": "row-from-export", "channel": "email",
                 "createdOn": "2025-01-02T00:00:00.000Z"})
    return write_fixtures(tmp_path, {"clicks": rows}), rows


def codes(pages):
    return [row["referralCode"] for page in pages for row in page["results"]]


def served_order(rows, keep=lambda row: True):
    """Referral codes of ``rows`` in export order: createdOn, then the row key as text (the loader
    keys fixture rows ``clicks-<line>``)."""
    keyed = [(parse_any(r["createdOn"]), r.get("id") or f"clicks-{line}", r["referralCode"])
             for line, r in enumerate(rows, start=1) if keep(r)]
    return [code for _, _, code in sorted(keyed)]


def test_paging_is_exact_across_equal_timestamps(serve, tmp_path):
    root, rows = paging_world(tmp_path)
    sim, api = serve(data_root=root)
    pages = api.pages("clicks", **WIDE, pageSize="10")
    assert [len(p["results"]) for p in pages] == [10, 10, 10, 1]
    assert all(p["totalResults"] == 31 for p in pages)
    assert "nextPageToken" not in pages[-1] and all("nextPageToken" in p for p in pages[:-1])
    assert codes(pages) == served_order(rows)
    assert len(set(codes(pages))) == 31 and codes(pages)[0] == "before" and codes(pages)[-3:] == \
        ["after", "micro", "has-own-id"]
    # rows without their own id are served without the synthetic key; a real id is served as given
    assert [r.get("id") for p in pages for r in p["results"] if "id" in r] == ["row-from-export"]
    # a page token is stable: reusing it returns the same page
    token = pages[1]["nextPageToken"]
    assert api.get("clicks", pageToken=token).json() == pages[2]
    assert api.get("clicks", pageToken=token).json() == pages[2]
    decoded = orjson.loads(b64url_decode(token))
    assert decoded["pageSize"] == 10 and decoded["fromDate"] == WIDE["fromDate"] and decoded["zone"] == "UTC"
    assert decoded["searchAfter"][0] == int(parse_any("2025-01-01T10:00:00Z").timestamp() * 1000)


def test_last_page_exactly_full_has_no_token(serve, tmp_path):
    root, _ = paging_world(tmp_path)
    sim, api = serve(data_root=root)
    pages = api.pages("clicks", **WIDE, pageSize="31")
    assert len(pages) == 1 and len(pages[0]["results"]) == 31 and "nextPageToken" not in pages[0]
    assert api.get("clicks", **WIDE, pageSize="30").json()["nextPageToken"]
    assert len(api.get("clicks", **WIDE).json()["results"]) == 31  # default pageSize 200


def test_window_edges_from_inclusive_to_exclusive(serve, tmp_path):
    root, rows = paging_world(tmp_path)
    sim, api = serve(data_root=root)
    window = lambda f, t, **kw: codes(api.pages("clicks", fromDate=f, toDate=t, **kw))  # noqa: E731
    same = served_order(rows, lambda r: r["referralCode"].startswith("same-"))
    assert len(same) == 27 and window("2025-01-01T10:00:00Z", "2025-01-01T10:00:00.001Z", pageSize="7") == same
    assert window("2025-01-01T09:59:59.999Z", "2025-01-01T10:00:00Z") == ["before"]
    assert window("2025-01-01T10:00:00.001Z", "2025-01-01T10:00:00.002Z") == ["after", "micro"]
    assert window("2025-01-01T10:00:00.0011Z", "2025-01-02T00:00:00Z") == ["micro"]
    assert window("2025-01-01T10:00:00Z", "2025-01-01T10:00:00Z") == []
    # the sub-millisecond row resumes exactly from a token
    pages = api.pages("clicks", fromDate="2025-01-01T10:00:00.001Z", toDate="2025-01-03T00:00:00Z", pageSize="1")
    assert codes(pages) == ["after", "micro", "has-own-id"] and len(pages) == 3
    empty = api.get("clicks", fromDate="2030-01-01T00:00:00Z", toDate="2030-02-01T00:00:00Z").json()
    assert empty == {"totalResults": 0, "results": []}


def test_filters_page_and_count(serve, tmp_path):
    root, rows = paging_world(tmp_path)
    sim, api = serve(data_root=root)
    pages = api.pages("clicks", **WIDE, channel="sms", pageSize="4")
    expected = served_order(rows, lambda r: r["channel"] == "sms")
    assert codes(pages) == expected and len(expected) == 9
    assert [len(p["results"]) for p in pages] == [4, 4, 1] and {p["totalResults"] for p in pages} == {9}
    token_body = orjson.loads(b64url_decode(pages[0]["nextPageToken"]))
    assert token_body["filters"] == {"channel": "sms"}
    by_campaign = api.get("clicks", **WIDE, campaignId="camp-us").json()
    assert by_campaign["totalResults"] == 27
    r = api.get("clicks", **WIDE, advocateEmail="a@x.com")  # not a filter of the clicks export
    assert (r.status_code, r.json()) == (422, envelope("Unprocessable Entity", '"advocateEmail" is not allowed'))


def test_filtered_count_follows_new_rows(serve, tmp_path):
    sim, api = serve(data_root=referral_world(tmp_path))
    assert api.get("purchases", **WIDE, email="FRIEND@example.com").json()["totalResults"] == 0
    api.post("event/purchase", {**PURCHASE, "referralCode": "ada10"})
    body = api.get("purchases", **WIDE, email="FRIEND@example.com").json()
    assert body["totalResults"] == 1 and body["results"][0]["orderId"] == "sf:801A"


def test_analytics_errors(serve, tmp_path):
    sim, api = serve()
    cases = [({}, '"fromDate" and "toDate" are required unless "pageToken" is given'),
             ({"fromDate": WIDE["fromDate"]}, '"fromDate" and "toDate" are required unless "pageToken" is given'),
             ({**WIDE, "limit": "10"}, '"limit" is not allowed'),
             ({**WIDE, "pageSize": "5000"}, '"pageSize" must be between 1 and 1000'),
             ({"fromDate": "yesterday", "toDate": WIDE["toDate"]}, '"fromDate" must be a valid ISO 8601 date'),
             ({"pageToken": "eyJub3QiOiJvdXJzIn0"}, '"pageToken" is invalid'),
             ({**WIDE, "widgetType": "banner"}, '"widgetType" must be one of [advocateShare, emailCapture]')]
    for params, message in cases:
        r = api.get("widget-views", **params)
        assert (r.status_code, r.json()) == (422, envelope("Unprocessable Entity", message)), params


# ---- faults and rate limits --------------------------------------------------------------------
@pytest.mark.parametrize("kind,status,name", [("p_500", 500, "Internal Server Error"), ("p_502", 502, "Bad Gateway"),
                                              ("p_503", 503, "Service Unavailable")])
def test_injected_server_errors_use_the_envelope(serve, kind, status, name):
    sim, api = serve()
    requests.post(f"{api.url}/_sandbox/faults", json={kind: 1.0})
    r = api.post("event/purchase", PURCHASE)
    body = r.json()
    assert r.status_code == status and body["error"] == name and body["code"] == 0
    assert body["message"] and len(body["reference"]) == 36  # a support reference on 5xx
    assert api.state()["events"]["purchase"] == []


def test_injected_429_without_and_with_retry_after(serve):
    sim, api = serve()
    requests.post(f"{api.url}/_sandbox/faults", json={"p_429": 1.0, "retry_after_seconds": 2.5})
    r = requests.get(f"{api.url}/v1/analytics/shares", params=WIDE)
    assert (r.status_code, r.json()) == (429, envelope("Too Many Requests", "Too many requests"))
    assert "Retry-After" not in r.headers and not any(h.lower().startswith("x-ratelimit") for h in r.headers)
    requests.post(f"{api.url}/_sandbox/faults", json={"rate_limit": {"retry_after": True}})
    r = requests.get(f"{api.url}/v1/analytics/shares", params=WIDE)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"


def test_leaky_bucket_rate_limit(serve):
    sim, api = serve(rate_limit={"requests_per_second": 1, "burst": 2, "retry_after": True})
    # the client's authorization call took the first of the two tokens
    assert api.get("shares", **WIDE).status_code == 200
    r = api.get("shares", **WIDE)
    assert (r.status_code, r.json()) == (429, envelope("Too Many Requests", "Too many requests"))
    assert r.headers["Retry-After"] == "1"
    time.sleep(1.1)  # the bucket leaks one request per second
    assert api.get("shares", **WIDE).status_code == 200
    assert sim.request_counts["GET /v1/analytics/shares"] == 3


def test_slow_fault_applies_and_drop_fault_does_not(serve):
    sim, api = serve()
    requests.post(f"{api.url}/_sandbox/faults", json={"p_slow": 1.0, "slow_seconds": 1.0})
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.http.post(f"{api.url}/v1/event/purchase", json=PURCHASE, timeout=0.3)
    requests.post(f"{api.url}/_sandbox/faults", json={"p_slow": 0, "p_drop": 1.0})
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post("event/purchase", {**PURCHASE, "orderId": "dropped"})
    assert [e["orderId"] for e in api.state()["events"]["purchase"]] == ["sf:801A"]  # slow: applied; drop: not


# ---- state ------------------------------------------------------------------------------------
def test_state_shape_persistence_and_reset(serve, tmp_path):
    root = referral_world(tmp_path / "fx")
    state_dir = tmp_path / "state"
    sim, api = serve(data_root=root, state_dir=state_dir, options={"duplicate_purchase": "ignore"})
    api.post("customer", {"email": "a@b.co", "customerId": "c1"})
    first = api.post("event/purchase", {**PURCHASE, "referralCode": "ada10"}).json()
    api.post("event/account-sign-up", {"email": "a@b.co", "customerId": "c1"})
    api.post("event/custom", {"eventType": "Review", "email": "a@b.co", "deduplicationId": "r1"})
    state = api.state()
    assert set(state) == {"customers", "events", "shares", "clicks", "account-sign-ups", "purchases", "widget-views",
                          "distributed-advocate-rewards", "distributed-friend-incentives", "email-captures",
                          "request_counts"}
    assert set(state["events"]) == {"purchase", "account-sign-up", "custom"}
    assert all({"eventId", "createdOn"} <= set(e) for events in state["events"].values() for e in events)
    assert len(state["shares"]) == 2 and len(state["purchases"]) == 1
    assert state["request_counts"] == {"POST /v1/authorization": 1, "POST /v1/customer": 1,
                                       "POST /v1/event/purchase": 1, "POST /v1/event/account-sign-up": 1,
                                       "POST /v1/event/custom": 1}
    requests.post(f"{api.url}/_sandbox/save")
    # a restarted simulator keeps the events and their duplicate indexes
    sim2, api2 = serve(data_root=root, state_dir=state_dir, options={"duplicate_purchase": "ignore"})
    again = api2.post("event/purchase", {**PURCHASE, "referralCode": "ada10"})
    assert (again.status_code, again.json()) == (200, first)
    dup = api2.post("event/custom", {"eventType": "Review", "email": "a@b.co", "deduplicationId": "r1"})
    assert dup.json() == {k: state["events"]["custom"][0][k] for k in ("eventId", "createdOn")}
    assert api2.state()["customers"] == state["customers"]
    requests.post(f"{api2.url}/_sandbox/reset")
    after = api2.state()
    assert after["events"] == {"purchase": [], "account-sign-up": [], "custom": []}
    assert after["customers"] == [] and after["purchases"] == [] and len(after["shares"]) == 2


def test_env_vars(serve):
    sim, api = serve()
    assert sim.env_vars(sim.base_url) == {"FRIENDBUY_MAPI_KEY": sim.credentials["key"],
                                          "FRIENDBUY_MAPI_SECRET": sim.credentials["secret"],
                                          "FRIENDBUY_MAPI_URL": sim.base_url}
    assert api.authorize(key=sim.credentials["key"]).status_code == 200


# ---- large collections ----------------------------------------------------------------------------
def test_paging_a_large_collection_reads_every_record_once(serve):
    """40k shares, four per second, in pages of 200: each once. (The serving rate is measured by
    the extraction benchmark, bench/bench_extract.py, not here.)"""
    sim, api = serve()
    n = 40_000
    rows = [{"id": f"shares-{i + 1}", "advocateEmail": f"a{i % 997}@x.com", "channel": "email",
             "referralCode": f"r{i}", "campaignId": "camp-us",
             "createdOn": fmt_iso_millis_z(T0 + timedelta(seconds=i // 4))} for i in range(n)]
    sim.collections["shares"].replace_all(rows)
    pages = api.pages("shares", **WIDE)
    codes = [r["referralCode"] for p in pages for r in p["results"]]   # one per share
    assert len(codes) == len(set(codes)) == n and len(pages) == n // 200
