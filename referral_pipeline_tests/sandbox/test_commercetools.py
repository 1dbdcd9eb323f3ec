"""The commercetools simulator over real HTTP on loopback: OAuth, queries and paging, updates and
409s, custom types, expansion, errors, faults and the rate limit; the labd ``commercetools`` SDK
runs against it unchanged."""
from __future__ import annotations

import base64
import time
from datetime import timedelta

import orjson
import pytest
import requests

from referral_pipeline.sandbox.commercetools import CommercetoolsSimulator
from referral_pipeline.sandbox.core.config import SystemConfig
from referral_pipeline.sandbox.testing import serve_in_thread

PROJECT = "referral-sandbox"
CLIENT = ("sandbox-ct-client", "sandbox-ct-secret")
CUSTOMER_TYPE_ID = "7a1f0c4e-0000-4000-8000-00000000c001"
ORDER_TYPE_ID = "7a1f0c4e-0000-4000-8000-00000000c002"


# ---- data ---------------------------------------------------------------------------------------
def uid(prefix: str, i: int) -> str:
    return f"{prefix}0000000-0000-4000-8000-{i:012d}"


def stamp(seconds: int) -> str:
    return f"2024-05-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def customer(i: int, **extra) -> dict:
    return {"id": uid("c", i), "version": 1, "email": f"user{i}@example.com", "firstName": f"First{i}",
            "lastName": f"Last{i}", "createdAt": stamp(i), "lastModifiedAt": stamp(i), "addresses": [],
            "shippingAddressIds": [], "billingAddressIds": [], "isEmailVerified": True, "stores": [],
            "customerGroupAssignments": [], "authenticationMode": "Password", **extra}


def money(cents: int) -> dict:
    return {"type": "centPrecision", "currencyCode": "USD", "centAmount": cents, "fractionDigits": 2}


def order(i: int, modified: str | None = None, **extra) -> dict:
    return {"id": uid("a", i), "version": 1, "orderNumber": f"CT-{i:05d}", "customerId": uid("c", i % 7),
            "customerEmail": f"user{i % 7}@example.com", "createdAt": stamp(i % 3600),
            "lastModifiedAt": modified or stamp(i % 3600), "store": {"typeId": "store", "key": "us"},
            "totalPrice": money(1000 + i), "lineItems": [], "customLineItems": [], "orderState": "Open",
            "paymentState": "Paid", "shippingMode": "Single", "taxMode": "Platform", "origin": "Customer",
            "discountCodes": [], "refusedGifts": [], "shipping": [], "syncInfo": [], "returnInfo": [],
            "custom": {"type": {"typeId": "type", "id": ORDER_TYPE_ID},
                       "fields": {"referralCode": f"REF-{i % 3}", "channel": "web"}},
            **extra}


def string_field(name: str, required: bool = False) -> dict:
    return {"name": name, "label": {"en": name}, "required": required, "type": {"name": "String"},
            "inputHint": "SingleLine"}


TYPES = [
    {"id": CUSTOMER_TYPE_ID, "version": 1, "key": "referral-customer", "name": {"en": "Referral customer"},
     "resourceTypeIds": ["customer"], "createdAt": stamp(0), "lastModifiedAt": stamp(0),
     "fieldDefinitions": [
         string_field("referralCode"),
         {"name": "referralRewardStatus", "label": {"en": "Reward status"}, "required": False,
          "type": {"name": "Enum", "values": [{"key": "pending", "label": "Pending"},
                                              {"key": "approved", "label": "Approved"}]}, "inputHint": "SingleLine"},
         {"name": "loyaltyPoints", "label": {"en": "Points"}, "required": False, "type": {"name": "Number"},
          "inputHint": "SingleLine"}]},
    {"id": ORDER_TYPE_ID, "version": 1, "key": "referral-order", "name": {"en": "Referral order"},
     "resourceTypeIds": ["order"], "createdAt": stamp(0), "lastModifiedAt": stamp(0),
     "fieldDefinitions": [string_field(n) for n in ("referralCode", "fbAttributionId", "ipAddress", "userAgent",
                                                       "deviceId", "channel")]},
]

DISCOUNT_CODES = [
    {"id": uid("d", 1), "version": 1, "code": "FRIEND-20", "cartDiscounts": [{"typeId": "cart-discount",
                                                                            "id": uid("e", 1)}],
     "isActive": True, "maxApplications": 1, "references": [], "groups": [], "stores": [],
     "createdAt": stamp(1), "lastModifiedAt": stamp(1)},
    {"id": uid("d", 2), "version": 1, "code": "SPRING", "cartDiscounts": [], "isActive": False, "references": [],
     "groups": [], "stores": [], "createdAt": stamp(2), "lastModifiedAt": stamp(2)},
]
CART_DISCOUNTS = [{"id": uid("e", 1), "version": 1, "key": "friend-20", "name": {"en": "Friend 20"},
                   "value": {"type": "relative", "permyriad": 2000}, "cartPredicate": "1 = 1", "sortOrder": "0.5",
                   "stores": [], "isActive": True, "requiresDiscountCode": True, "references": [],
                   "stackingMode": "Stacking", "createdAt": stamp(1), "lastModifiedAt": stamp(1)}]


def write_fixtures(root, **collections) -> None:
    folder = root / "commercetools"
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in collections.items():
        (folder / f"{name.replace('_', '-')}.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")


def default_world(root, customers=12, orders=45):
    write_fixtures(root, customers=[customer(i) for i in range(customers)],
                   orders=[order(i) for i in range(orders)], discount_codes=DISCOUNT_CODES,
                   cart_discounts=CART_DISCOUNTS, types=TYPES)
    return root


@pytest.fixture
def world(tmp_path):
    return default_world(tmp_path / "fixtures")


@pytest.fixture
def sim(world):
    with serve_in_thread(CommercetoolsSimulator(data_root=world)) as running:
        yield running


# ---- HTTP helpers -------------------------------------------------------------------------------
def get_token(sim, scope: str | None = None, auth=CLIENT) -> dict:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    r = requests.post(f"{sim.base_url}/oauth/token", data=data, auth=auth)
    assert r.status_code == 200, r.text
    return r.json()


class Api:
    """A bare HTTP client of the simulated project."""

    def __init__(self, sim, scope: str | None = None):
        self.base = f"{sim.base_url}/{PROJECT}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {get_token(sim, scope)['access_token']}"

    def get(self, path: str, params=None) -> requests.Response:
        return self.session.get(self.base + path, params=params)

    def post(self, path: str, body) -> requests.Response:
        return self.session.post(self.base + path, json=body)


def assert_error(r: requests.Response, status: int, code: str, message: str | None = None, **extra) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["statusCode"] == status and body["errors"][0]["code"] == code
    assert body["message"] == body["errors"][0]["message"]
    if message is not None:
        assert body["message"] == message
    for k, v in extra.items():
        assert body["errors"][0][k] == v, (k, body)
    return body


@pytest.fixture
def ct_sdk(monkeypatch):
    """A factory of labd SDK clients pointed at a simulator (via the CTP_* variables it prints)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    from commercetools.platform import Client
    from commercetools.utils import DefaultTokenSaver

    def make(sim):
        DefaultTokenSaver.clear_cache()
        env = sim.env_vars(sim.base_url)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        # the generated platform Client defaults ``url`` to https://api.{region}.commercetools.com, so
        # CTP_API_URL is only honoured when passed explicitly; the other CTP_* come from the environment
        return Client(url=env["CTP_API_URL"]).with_project_key(env["CTP_PROJECT_KEY"])
    yield make
    DefaultTokenSaver.clear_cache()


# ---- OAuth ----------------------------------------------------------------------------------------
def test_token_endpoint(sim):
    token = get_token(sim)
    assert set(token) == {"access_token", "token_type", "expires_in", "scope"}
    assert (token["token_type"], token["expires_in"], token["scope"]) == ("Bearer", 172800, f"manage_project:{PROJECT}")
    narrow = get_token(sim, scope=f"view_customers:{PROJECT} view_orders:{PROJECT}")
    assert narrow["scope"] == f"view_customers:{PROJECT} view_orders:{PROJECT}"
    # client credentials in the form instead of Basic auth
    r = requests.post(f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials", "client_id": CLIENT[0],
                                                           "client_secret": CLIENT[1]})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"

    r = requests.post(f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(CLIENT[0], "x"))
    body = assert_error(r, 401, "invalid_client",
                        "Please provide valid client credentials using HTTP Basic Authentication.")
    assert body["error"] == "invalid_client"
    r = requests.post(f"{sim.base_url}/oauth/token", data={"grant_type": "password"}, auth=CLIENT)
    assert assert_error(r, 400, "unsupported_grant_type")["error"] == "unsupported_grant_type"
    r = requests.post(f"{sim.base_url}/oauth/token", data={"grant_type": "client_credentials",
                                                           "scope": "manage_project:other-project"}, auth=CLIENT)
    assert_error(r, 400, "invalid_scope", "Illegal scope requested: 'manage_project:other-project'.")


def test_bearer_token_errors_and_scopes(sim):
    url = f"{sim.base_url}/{PROJECT}/customers"
    body = assert_error(requests.get(url), 401, "invalid_token", "Missing or malformed 'Authorization' header.")
    assert body["error"] == "invalid_token"
    body = assert_error(requests.get(url, headers={"Authorization": "Bearer forged.token"}), 401, "invalid_token",
                        "invalid_token")
    assert body == {"statusCode": 401, "message": "invalid_token", "error": "invalid_token",
                    "errors": [{"code": "invalid_token", "message": "invalid_token"}]}

    token = get_token(sim)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=headers).status_code == 200
    real_now = sim.now
    sim.now = lambda: real_now() + timedelta(seconds=172801)   # the token has expired
    try:
        body = assert_error(requests.get(url, headers=headers), 401, "invalid_token")
        assert body["error_description"] == "The access token expired."
    finally:
        sim.now = real_now

    viewer = Api(sim, scope=f"view_customers:{PROJECT}")
    assert viewer.get("/customers").status_code == 200
    cust = viewer.get("/customers", {"limit": 1}).json()["results"][0]
    r = viewer.post(f"/customers/{cust['id']}", {"version": 1, "actions": []})
    assert_error(r, 403, "insufficient_scope",
                 "Insufficient scope. One of the following scopes is missing: manage_customers, manage_project")
    assert_error(viewer.get("/orders"), 403, "insufficient_scope")
    other_project = requests.get(f"{sim.base_url}/another-project/customers", headers=headers)
    assert_error(other_project, 403, "insufficient_scope")


# ---- the SDK --------------------------------------------------------------------------------------
def test_sdk_lists_customers_with_where_sort_limit(sim, ct_sdk):
    project = ct_sdk(sim)
    page = project.customers().get(where=['email in ("user3@example.com", "user5@example.com", "user9@example.com")'],
                                   sort=["lastModifiedAt desc"], limit=2, with_total=False)
    assert [c.email for c in page.results] == ["user9@example.com", "user5@example.com"]
    assert (page.limit, page.offset, page.count, page.total) == (2, 0, 2, None)
    page = project.customers().get(where=['firstName = "First4" or lastName = "Last6"', "isEmailVerified = true"],
                                   sort=["email asc"])
    assert [c.email for c in page.results] == ["user4@example.com", "user6@example.com"] and page.total == 2
    one = project.customers().with_id(uid("c", 3)).get()
    assert one.email == "user3@example.com" and one.version == 1
    assert project.customers().with_id(uid("c", 999)).get() is None          # the SDK's 404


def test_sdk_pages_orders(sim, ct_sdk):
    from commercetools.paginators import CursorPaginator, Paginator

    project = ct_sdk(sim)
    expected = sorted(uid("a", i) for i in range(45))
    seen, last = [], None
    while True:   # keyset paging on id, as the pipeline does
        where = [f'id > "{last}"'] if last else []
        page = project.orders().get(where=where, sort=["id asc"], limit=10, with_total=False)
        seen += [o.id for o in page.results]
        if page.count < 10:
            break
        last = page.results[-1].id
    assert seen == expected
    offset_pages = Paginator(project.orders().get, sort=["id asc"])
    offset_pages.page_size = 7
    assert [o.id for o in offset_pages] == expected
    cursor = CursorPaginator(project.orders().get, where=['custom(fields(referralCode = "REF-1"))'])
    cursor.page_size = 4
    assert sorted(o.id for o in cursor) == sorted(uid("a", i) for i in range(45) if i % 3 == 1)


def test_sdk_updates_a_custom_field_and_handles_409(sim, ct_sdk):
    from commercetools import CommercetoolsError
    from commercetools.platform.models import (CustomerSetCustomFieldAction, CustomerSetCustomTypeAction,
                                               CustomerUpdate, FieldContainer, TypeResourceIdentifier)

    project = ct_sdk(sim)
    cid = uid("c", 2)
    customer_api = project.customers().with_id(cid)
    updated = customer_api.post(CustomerUpdate(version=1, actions=[CustomerSetCustomTypeAction(
        type=TypeResourceIdentifier(key="referral-customer"), fields=FieldContainer({"referralCode": "ANN-1"}))]))
    assert updated.version == 2 and updated.custom.type.id == CUSTOMER_TYPE_ID
    assert updated.custom.fields == {"referralCode": "ANN-1"}
    updated = customer_api.post(CustomerUpdate(version=2, actions=[
        CustomerSetCustomFieldAction(name="referralRewardStatus", value="approved")]))
    assert updated.version == 3 and updated.custom.fields["referralRewardStatus"] == "approved"
    assert updated.last_modified_at > updated.created_at

    with pytest.raises(CommercetoolsError) as err:   # a stale version
        customer_api.post(CustomerUpdate(version=2, actions=[CustomerSetCustomFieldAction(name="loyaltyPoints",
                                                                                          value=40)]))
    assert err.value.codes == ["ConcurrentModification"]
    assert err.value.errors[0]["currentVersion"] == 3
    assert err.value.correlation_id.startswith("projects-")
    current = customer_api.get()
    assert current.version == 3 and "loyaltyPoints" not in current.custom.fields     # nothing applied
    updated = customer_api.post(CustomerUpdate(version=current.version, actions=[
        CustomerSetCustomFieldAction(name="loyaltyPoints", value=40)]))
    assert updated.version == 4 and updated.custom.fields["loyaltyPoints"] == 40
    # the SDK's force_version retries with currentVersion from the 409
    forced = customer_api.post(CustomerUpdate(version=1, actions=[
        CustomerSetCustomFieldAction(name="loyaltyPoints", value=41)]), options={"force_version": True})
    assert forced.version == 5
    stored = requests.get(f"{sim.base_url}/_sandbox/state").json()["customers"]
    assert next(c for c in stored if c["id"] == cid)["custom"]["fields"] == {
        "referralCode": "ANN-1", "referralRewardStatus": "approved", "loyaltyPoints": 41}


# ---- paging ---------------------------------------------------------------------------------------
def test_keyset_paging_past_10000_is_exact(tmp_path):
    shared = [stamp(s) for s in range(30)]        # 12,000 orders on 30 timestamps: 400 share each one
    orders = [order(i, modified=shared[(i * 7) % 30]) for i in range(12_000)]
    write_fixtures(tmp_path, orders=orders, types=TYPES)
    with serve_in_thread(CommercetoolsSimulator(data_root=tmp_path)) as sim:
        api = Api(sim)
        seen, cursor, pages = [], None, 0
        while True:
            params = [("sort", "lastModifiedAt asc"), ("sort", "id asc"), ("limit", "500"), ("withTotal", "false")]
            if cursor:
                params.append(("where", f'lastModifiedAt > "{cursor[0]}" or '
                                        f'(lastModifiedAt = "{cursor[0]}" and id > "{cursor[1]}")'))
            body = api.get("/orders", params).json()
            assert "total" not in body and body["offset"] == 0 and body["limit"] == 500
            seen += [(o["lastModifiedAt"], o["id"]) for o in body["results"]]
            pages += 1
            if body["count"] < 500:
                break
            cursor = seen[-1]
        assert pages == 25 and len(seen) == 12_000 and len(set(seen)) == 12_000
        assert seen == sorted((o["lastModifiedAt"], o["id"]) for o in orders)
        # offset paging stops at 10,000
        assert api.get("/orders", {"offset": "10000", "limit": "500", "sort": "id asc"}).json()["count"] == 500
        r = api.get("/orders", {"offset": "10001"})
        assert_error(r, 400, "InvalidInput",
                     "Malformed parameter: offset: The offset parameter must be in the range of [0..10000]")
        # total: exact without a predicate, capped at 10,000 with one
        assert api.get("/orders", {"limit": "1"}).json()["total"] == 12_000
        body = api.get("/orders", {"limit": "1", "where": 'store(key = "us")'}).json()
        assert body["total"] == 10_000 and body["count"] == 1


def test_paging_parameters(sim):
    api = Api(sim)
    r = api.get("/orders", {"limit": "501"})
    assert_error(r, 400, "InvalidInput",
                 "Malformed parameter: limit: The limit parameter must be in the range of [0..500]")
    body = api.get("/orders").json()
    assert (body["limit"], body["offset"], body["count"], body["total"]) == (20, 0, 20, 45)
    assert list(body) == ["limit", "offset", "count", "total", "results"]
    for raw, has_total in (("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)):
        assert ("total" in api.get("/orders", {"withTotal": raw, "limit": "1"}).json()) is has_total
    assert_error(api.get("/orders", {"withTotal": "nope"}), 400, "InvalidInput")
    body = api.get("/orders", {"limit": "0"}).json()
    assert (body["count"], body["results"], body["total"]) == (0, [], 45)
    body = api.get("/orders", [("sort", "createdAt desc"), ("offset", "40"), ("limit", "10")]).json()
    assert body["count"] == 5 and [o["id"] for o in body["results"]] == [uid("a", i) for i in range(4, -1, -1)]
    body = api.get("/customers", [("where", 'lastModifiedAt >= "2024-05-01T00:00:05.000Z"'),
                                  ("where", 'lastModifiedAt < "2024-05-01T00:00:08.000Z"'),
                                  ("sort", "lastModifiedAt asc")]).json()
    assert [c["email"] for c in body["results"]] == ["user5@example.com", "user6@example.com", "user7@example.com"]
    assert body["total"] == 3


def test_predicate_errors_and_variables(sim):
    api = Api(sim)
    r = api.get("/orders", {"where": 'orderState = "Open" and'})
    body = assert_error(r, 400, "InvalidInput")
    assert body["message"].startswith("Malformed parameter: where: Syntax error while parsing 'where'. "
                                      "Unexpected end of input")
    assert_error(api.get("/orders", {"where": 'limit = 5'}), 400, "InvalidInput",
                 "Malformed parameter: where: The field 'limit' does not exist.")
    assert_error(api.get("/orders", {"where": 'orderState = "aOpen"'}), 400, "InvalidInput",
                 "Malformed parameter: where: Invalid enum value for OrderState: aOpen")
    assert_error(api.get("/customers", {"sort": "nickname asc"}), 400, "InvalidInput",
                 "Malformed parameter: sort: The field 'nickname' does not exist.")
    body = api.get("/orders", [("where", "orderNumber in :numbers"), ("var.numbers", "CT-00003"),
                               ("var.numbers", "CT-00007"), ("sort", "orderNumber asc")]).json()
    assert [o["orderNumber"] for o in body["results"]] == ["CT-00003", "CT-00007"]
    assert_error(api.get("/orders", {"where": "orderNumber = :missing"}), 400, "InvalidInput")


def test_expand_discount_codes(sim):
    refs = [{"discountCode": {"typeId": "discount-code", "id": uid("d", 1)}, "state": "MatchesCart"},
            {"discountCode": {"typeId": "discount-code", "id": uid("d", 404)}, "state": "NotActive"}]
    requests.post(f"{sim.base_url}/_sandbox/records",
                  json={"collection": "orders", "records": [{"id": uid("a", 1), "discountCodes": refs}]})
    api = Api(sim)
    plain = api.get(f"/orders/{uid('a', 1)}").json()
    assert plain["discountCodes"] == refs
    query = {"where": f'id = "{uid("a", 1)}"', "expand": "discountCodes[*].discountCode"}
    expanded = api.get("/orders", query).json()["results"][0]
    assert expanded["discountCodes"][0]["discountCode"] == {**refs[0]["discountCode"], "obj": DISCOUNT_CODES[0]}
    assert expanded["discountCodes"][1] == refs[1]                  # a dangling reference stays as it is
    by_id = api.get(f"/orders/{uid('a', 1)}", {"expand": "discountCodes[*].discountCode"}).json()
    assert by_id["discountCodes"][0]["discountCode"]["obj"]["code"] == "FRIEND-20"
    assert "obj" not in api.get(f"/orders/{uid('a', 1)}").json()["discountCodes"][0]["discountCode"]  # not stored
    code = api.get(f"/discount-codes/{uid('d', 1)}", {"expand": "cartDiscounts[*]"}).json()
    assert code["cartDiscounts"][0]["obj"]["key"] == "friend-20"
    assert api.get("/discount-codes", {"where": 'code = "FRIEND-20" and isActive = true'}).json()["total"] == 1


def test_single_resource_endpoints(sim):
    api = Api(sim)
    assert api.get(f"/customers/{uid('c', 4)}").json()["email"] == "user4@example.com"
    requests.post(f"{sim.base_url}/_sandbox/records", json={"collection": "customers",
                                                           "records": [{"id": uid("c", 4), "key": "cust-4"}]})
    assert api.get("/customers/key=cust-4").json()["id"] == uid("c", 4)
    assert api.get("/orders/order-number=CT-00009").json()["id"] == uid("a", 9)
    assert api.get("/types/key=referral-order").json()["id"] == ORDER_TYPE_ID
    assert api.get("/cart-discounts/key=friend-20").json()["id"] == uid("e", 1)
    assert_error(api.get("/customers/nope"), 404, "ResourceNotFound", "The Resource with ID 'nope' was not found.")
    assert_error(api.get("/orders/order-number=CT-99999"), 404, "ResourceNotFound",
                 "The Resource with orderNumber 'CT-99999' was not found.")
    assert api.session.head(f"{api.base}/orders/{uid('a', 3)}").status_code == 200
    assert api.session.head(f"{api.base}/orders/nope").status_code == 404
    assert api.session.head(f"{api.base}/orders", params={"where": 'orderNumber = "CT-00001"'}).status_code == 200
    assert api.session.head(f"{api.base}/orders", params={"where": 'orderNumber = "none"'}).status_code == 404
    assert_error(api.get("/products"), 404, "ResourceNotFound")
    counts = requests.get(f"{sim.base_url}/_sandbox/state").json()["request_counts"]
    assert counts["GET /{projectKey}/orders/order-number={orderNumber}"] == 2
    assert counts["GET /{projectKey}/customers/key={key}"] == 1


# ---- updates ----------------------------------------------------------------------------------------
def test_order_updates_and_their_errors(sim):
    api = Api(sim)
    oid = uid("a", 5)
    before = api.get(f"/orders/{oid}").json()
    r = api.post(f"/orders/{oid}", {"version": 1, "actions": [{"action": "changeOrderState", "orderState": "Complete"},
                                                              {"action": "setCustomField", "name": "ipAddress",
                                                               "value": "10.0.0.9"}]})
    after = r.json()
    assert r.status_code == 200 and after["version"] == 2 and after["orderState"] == "Complete"
    assert after["custom"]["fields"] == {**before["custom"]["fields"], "ipAddress": "10.0.0.9"}
    assert after["lastModifiedAt"] > before["lastModifiedAt"]
    assert after["lastModifiedBy"] == {"clientId": CLIENT[0], "isPlatformClient": False}
    # an update that changes nothing keeps version and stamp
    same = api.post(f"/orders/{oid}", {"version": 2, "actions": [{"action": "changeOrderState",
                                                                   "orderState": "Complete"}]}).json()
    assert (same["version"], same["lastModifiedAt"]) == (2, after["lastModifiedAt"])
    # by order number
    r = api.post("/orders/order-number=CT-00005", {"version": 2, "actions": [{"action": "changePaymentState",
                                                                             "paymentState": "CreditOwed"}]})
    assert r.json()["version"] == 3

    stale = api.post(f"/orders/{oid}", {"version": 1, "actions": []})
    assert_error(stale, 409, "ConcurrentModification",
                 f"Object {oid} has a different version than expected. Expected: 1 - Actual: 3.", currentVersion=3)
    assert_error(api.post(f"/orders/{oid}", {"version": 1, "actions": [{"action": "fly"}]}), 400, "InvalidJsonInput",
                 "Request body does not contain valid JSON.",
                 detailedErrorMessage="actions -> action: Unknown update action 'fly' for resource type 'order'.")
    bad_state = api.post(f"/orders/{oid}", {"version": 3, "actions": [{"action": "changeOrderState",
                                                                       "orderState": "Lost"}]})
    assert "orderState: Invalid enum value: 'Lost'" in assert_error(bad_state, 400, "InvalidJsonInput")["errors"][0][
        "detailedErrorMessage"]
    assert_error(api.post(f"/orders/{oid}", {"actions": []}), 400, "InvalidJsonInput",
                 detailedErrorMessage="version: Missing required value.")
    r = api.session.post(f"{api.base}/orders/{oid}", data=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "InvalidJsonInput")
    # a failing action anywhere in the list leaves the order untouched
    r = api.post(f"/orders/{oid}", {"version": 3, "actions": [
        {"action": "changeOrderState", "orderState": "Cancelled"},
        {"action": "setCustomField", "name": "ipAddress", "value": 42}]})
    assert_error(r, 400, "InvalidField", "The value '42' is not valid for field 'ipAddress'.", field="ipAddress",
                 invalidValue=42)
    stored = api.get(f"/orders/{oid}").json()
    assert (stored["version"], stored["orderState"]) == (3, "Complete")
    r = api.post(f"/orders/{oid}", {"version": 3, "actions": [{"action": "setCustomField", "name": "color",
                                                              "value": "red"}]})
    assert_error(r, 400, "InvalidField", "The field 'color' is not defined in the type 'referral-order'.")
    assert_error(api.post("/orders/nope", {"version": 1, "actions": []}), 404, "ResourceNotFound")


def test_customer_custom_type_errors(sim):
    api = Api(sim)
    cid = uid("c", 1)
    r = api.post(f"/customers/{cid}", {"version": 1, "actions": [{"action": "setCustomField", "name": "referralCode",
                                                                   "value": "X"}]})
    assert_error(r, 400, "InvalidOperation")                        # no custom type yet
    r = api.post(f"/customers/{cid}", {"version": 1, "actions": [{"action": "setCustomType",
                                                                   "type": {"typeId": "type", "key": "nope"}}]})
    assert_error(r, 400, "ReferencedResourceNotFound", typeId="type", key="nope")
    r = api.post(f"/customers/{cid}", {"version": 1, "actions": [{"action": "setCustomType",
                                                                   "type": {"typeId": "type", "key": "referral-order"}}]})
    assert_error(r, 400, "InvalidOperation")                        # a type made for orders
    r = api.post(f"/customers/{cid}", {"version": 1, "actions": [{
        "action": "setCustomType", "type": {"typeId": "type", "id": CUSTOMER_TYPE_ID},
        "fields": {"referralRewardStatus": "paid"}}]})
    assert_error(r, 400, "InvalidField", field="referralRewardStatus", invalidValue="paid",
                 allowedValues=["pending", "approved"])
    r = api.post(f"/customers/{cid}", {"version": 1, "actions": [
        {"action": "setCustomType", "type": {"typeId": "type", "id": CUSTOMER_TYPE_ID}, "fields": {"loyaltyPoints": 5}},
        {"action": "setFirstName", "firstName": "Ann"}, {"action": "setLastName"}]})
    body = r.json()
    assert body["version"] == 2 and body["firstName"] == "Ann" and "lastName" not in body
    assert body["custom"] == {"type": {"typeId": "type", "id": CUSTOMER_TYPE_ID}, "fields": {"loyaltyPoints": 5}}
    r = api.post(f"/customers/{cid}", {"version": 2, "actions": [{"action": "setCustomField", "name": "referralCode"}]})
    assert_error(r, 400, "InvalidOperation", "Cannot remove custom field 'referralCode' because it does not exist.")
    r = api.post(f"/customers/{cid}", {"version": 2, "actions": [{"action": "changeEmail",
                                                                   "email": "USER3@example.com"}]})
    assert_error(r, 400, "DuplicateField", field="email", duplicateValue="USER3@example.com")
    removed = api.post(f"/customers/{cid}", {"version": 2, "actions": [{"action": "setCustomType"}]}).json()
    assert removed["version"] == 3 and "custom" not in removed


def test_types_create_get_and_update(sim):
    api = Api(sim)
    draft = {"key": "referral-extra", "name": {"en": "Extra"}, "resourceTypeIds": ["customer"],
             "fieldDefinitions": [{"name": "note", "label": {"en": "Note"}, "required": False,
                                   "type": {"name": "String"}}]}
    r = api.post("/types", draft)
    created = r.json()
    assert r.status_code == 201 and created["version"] == 1 and created["key"] == "referral-extra"
    assert created["fieldDefinitions"][0]["inputHint"] == "SingleLine" and len(created["id"]) == 36
    assert_error(api.post("/types", draft), 400, "DuplicateField", field="key", duplicateValue="referral-extra")
    assert_error(api.post("/types", {"key": "x1", "name": {"en": "x"}}), 400, "InvalidJsonInput",
                 detailedErrorMessage="resourceTypeIds: Missing required value.")
    assert api.get("/types/key=referral-extra").json()["id"] == created["id"]
    r = api.post("/types/key=referral-extra", {"version": 1, "actions": [
        {"action": "addFieldDefinition", "fieldDefinition": {"name": "score", "label": {"en": "Score"},
                                                             "required": False, "type": {"name": "Number"}}}]})
    assert [d["name"] for d in r.json()["fieldDefinitions"]] == ["note", "score"] and r.json()["version"] == 2
    viewer = Api(sim, scope=f"view_types:{PROJECT}")
    assert_error(viewer.post("/types", {**draft, "key": "other"}), 403, "insufficient_scope")


# ---- faults, limits, admin ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind,status,code", [("p_500", 500, "General"), ("p_502", 502, "BadGateway"),
                                              ("p_503", 503, "OverCapacity")])
def test_injected_server_errors_use_the_api_envelope(world, kind, status, code):
    with serve_in_thread(CommercetoolsSimulator(data_root=world)) as sim:
        token = get_token(sim)["access_token"]
        requests.post(f"{sim.base_url}/_sandbox/faults", json={kind: 1.0})
        r = requests.get(f"{sim.base_url}/{PROJECT}/customers", headers={"Authorization": f"Bearer {token}"})
        body = assert_error(r, status, code)
        assert set(body) == {"statusCode", "message", "errors"} and "injected" not in body["message"]
        assert r.headers["X-Correlation-ID"].startswith("projects-")


def test_injected_429_and_the_sdk_retrying(world, ct_sdk):
    with serve_in_thread(CommercetoolsSimulator(data_root=world)) as sim:
        project = ct_sdk(sim)
        requests.post(f"{sim.base_url}/_sandbox/faults", json={"p_429": 1.0, "retry_after_seconds": 1})
        r = requests.get(f"{sim.base_url}/{PROJECT}/customers")
        assert_error(r, 429, "TooManyRequests")
        assert (r.headers["Retry-After"], r.headers["X-RateLimit-Remaining"]) == ("1", "0")
        assert r.headers["X-Correlation-ID"].startswith("projects-")
        # the SDK's urllib3 Retry honours Retry-After on a 429: three retries, then RetryError
        before = sim.request_counts["GET /{projectKey}/customers"]
        with pytest.raises(requests.exceptions.RetryError):
            project.customers().get()
        assert sim.request_counts["GET /{projectKey}/customers"] - before == 4
        # 503 half of the time (seed 1 draws: 503, then a clean response): the SDK's retry gets through
        requests.post(f"{sim.base_url}/_sandbox/faults", json={"p_429": 0, "p_503": 0.5, "seed": 1})
        assert project.customers().get(limit=1).count == 1
        assert sim.faults.injected["503"] == 1


def test_rate_limit(world):
    config = SystemConfig(rate_limit={"requests_per_second": 0.5, "burst": 2})
    with serve_in_thread(CommercetoolsSimulator(config, data_root=world)) as sim:
        api = Api(sim)                                   # the token request takes one
        assert api.get("/customers").status_code == 200
        r = api.get("/customers")
        assert_error(r, 429, "TooManyRequests")
        assert r.headers["X-RateLimit-Limit"] == "0.5" and int(r.headers["Retry-After"]) >= 1
        requests.post(f"{sim.base_url}/_sandbox/faults", json={"rate_limit": {"status": 503}})  # a fresh bucket
        statuses = [api.get("/customers").status_code for _ in range(3)]
        assert statuses == [200, 200, 503]
        assert_error(api.get("/customers"), 503, "OverCapacity")


def test_admin_upsert_state_and_env(sim):
    url = sim.base_url
    r = requests.post(f"{url}/_sandbox/records", json={"collection": "customers", "records": [
        {"id": uid("c", 1), "firstName": "Changed"}, {"email": "new@example.com", "addresses": []}]})
    old, new = r.json()["records"]
    assert old["version"] == 2 and old["firstName"] == "Changed" and old["lastModifiedAt"] > stamp(1)
    assert old["email"] == "user1@example.com"                       # merged, not replaced
    assert new["version"] == 1 and len(new["id"]) == 36 and new["createdAt"] == new["lastModifiedAt"]
    api = Api(sim)
    body = api.get("/customers", {"where": f'lastModifiedAt > "{stamp(100)}"', "sort": "lastModifiedAt asc"}).json()
    assert [c["id"] for c in body["results"]] == [c["id"] for c in sorted(
        (old, new), key=lambda c: (c["lastModifiedAt"], c["id"]))]
    state = requests.get(f"{url}/_sandbox/state").json()
    assert set(state) == {"customers", "orders", "discount-codes", "cart-discounts", "types", "request_counts"}
    assert len(state["customers"]) == 13 and len(state["orders"]) == 45 and state["discount-codes"] == DISCOUNT_CODES
    assert state["request_counts"] == {"GET /{projectKey}/customers": 1, "POST /oauth/token": 1}
    assert sim.env_vars(url) == {"CTP_PROJECT_KEY": PROJECT, "CTP_CLIENT_ID": CLIENT[0], "CTP_CLIENT_SECRET": CLIENT[1],
                                 "CTP_SCOPES": f"manage_project:{PROJECT}", "CTP_AUTH_URL": url, "CTP_API_URL": url}


def test_credentials_and_token_lifetime_from_config(world):
    config = SystemConfig(credentials={"project_key": "shop-eu", "client_id": "id-eu", "client_secret": "s-eu",
                                       "scopes": "view_orders:shop-eu view_customers:shop-eu"},
                          options={"token_ttl_seconds": 60})
    with serve_in_thread(CommercetoolsSimulator(config, data_root=world)) as sim:
        env = sim.env_vars(sim.base_url)
        assert env["CTP_SCOPES"] == "view_orders:shop-eu,view_customers:shop-eu"
        token = get_token(sim, auth=("id-eu", "s-eu"))
        assert token["expires_in"] == 60 and token["scope"] == "view_orders:shop-eu view_customers:shop-eu"
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert requests.get(f"{sim.base_url}/shop-eu/orders", headers=headers).json()["total"] == 45
        r = requests.post(f"{sim.base_url}/oauth/token", auth=("id-eu", "s-eu"),
                          data={"grant_type": "client_credentials", "scope": "manage_orders:shop-eu"})
        assert_error(r, 400, "invalid_scope")
        basic = base64.b64encode(b"id-eu:s-eu").decode()
        r = requests.post(f"{sim.base_url}/oauth/token", headers={"Authorization": f"Basic {basic}"},
                          data={"grant_type": "client_credentials", "scope": "view_orders:shop-eu"})
        assert r.json()["scope"] == "view_orders:shop-eu"


def test_tokens_survive_a_restart_and_state_persists(world, tmp_path):
    state_dir = tmp_path / "state"
    with serve_in_thread(CommercetoolsSimulator(data_root=world, state_dir=state_dir)) as sim:
        api = Api(sim)
        token = api.session.headers["Authorization"]
        api.post(f"/customers/{uid('c', 0)}", {"version": 1, "actions": [{"action": "setFirstName", "firstName": "Zed"}]})
    with serve_in_thread(CommercetoolsSimulator(data_root=world, state_dir=state_dir)) as sim:
        r = requests.get(f"{sim.base_url}/{PROJECT}/customers/{uid('c', 0)}", headers={"Authorization": token})
        assert r.status_code == 200 and (r.json()["firstName"], r.json()["version"]) == ("Zed", 2)


def test_fixture_records_are_served_as_given(tmp_path):
    odd = order(1, totalPrice={"centAmount": -5}, orderState="Weird")
    del odd["version"]
    write_fixtures(tmp_path, orders=[odd])
    with serve_in_thread(CommercetoolsSimulator(data_root=tmp_path)) as sim:
        got = Api(sim).get(f"/orders/{uid('a', 1)}").json()
        assert got == {**odd, "version": 1}


def test_throughput_smoke(tmp_path):
    """Not a benchmark: 6,000 orders page by keyset well above the 20k records/s target's order."""
    write_fixtures(tmp_path, orders=[order(i) for i in range(6_000)])
    with serve_in_thread(CommercetoolsSimulator(data_root=tmp_path)) as sim:
        api = Api(sim)
        t0, n, cursor = time.perf_counter(), 0, None
        while True:
            params = [("sort", "lastModifiedAt asc"), ("sort", "id asc"), ("limit", "500"), ("withTotal", "false")]
            if cursor:
                params.append(("where", f'lastModifiedAt > "{cursor[0]}" or '
                                        f'(lastModifiedAt = "{cursor[0]}" and id > "{cursor[1]}")'))
            results = api.get("/orders", params).json()["results"]
            n += len(results)
            if len(results) < 500:
                break
            cursor = (results[-1]["lastModifiedAt"], results[-1]["id"])
        assert n == 6_000
        assert n / (time.perf_counter() - t0) > 5_000      # loose: shared CPUs
