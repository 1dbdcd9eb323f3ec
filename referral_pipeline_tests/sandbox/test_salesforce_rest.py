"""Salesforce simulator over real HTTP: OAuth, sessions, REST query paging and cursors, sObject
reads/writes, limits, injected faults, admin routes and state. simple-salesforce itself is the
client wherever the pipeline will use it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (SalesforceAuthenticationFailed, SalesforceExpiredSession,
                                          SalesforceGeneralError, SalesforceMalformedRequest,
                                          SalesforceMoreThanOneRecord, SalesforceRefusedRequest,
                                          SalesforceResourceNotFound)

from referral_pipeline.http.salesforce_session import HttpsToHttpAdapter, session_for_instance
from referral_pipeline.sandbox.core import stamps
from referral_pipeline.sandbox.salesforce.schema import make_id
from referral_pipeline.sandbox.testing import serve_in_thread

from .salesforce_support import (A1, A2, C1, C2, C3, C4, C5, FIXTURES, O1, R1, Api, make_sim, sf_client,
                                 write_fixtures)

SIX_TYPES = ["Account", "Contact", "Order", "OrderItem", "Referral__c", "Referral_Reward__c"]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    return write_fixtures(tmp_path_factory.mktemp("sf-data"))


@pytest.fixture(scope="module")
def served(fixture_root):
    with serve_in_thread(make_sim(fixture_root)) as sim:
        yield sim


@pytest.fixture
def sim(served):
    """The module's simulator, back at its fixture data and real clock."""
    served.reset()
    served.__dict__.pop("now", None)
    yield served
    served.__dict__.pop("now", None)


def contacts(n: int, day: int = 1, same_stamp: bool = False) -> list[dict]:
    base = datetime(2025, 2, day, tzinfo=timezone.utc)
    return [{"Id": make_id("003", 10_000 + i), "AccountId": A1, "LastName": f"Bulk{i:05d}",
             "Email": f"bulk{i}@example.com",
             "SystemModstamp": stamps.fmt_salesforce(base if same_stamp else base + timedelta(seconds=i // 2))}
            for i in range(n)]


# ---- OAuth and sessions ----------------------------------------------------------------------------
def test_client_credentials_login_through_simple_salesforce(sim):
    session = session_for_instance(sim.base_url, login_domain="referral-sandbox.my")
    sf = Salesforce(consumer_key="referral-sandbox-client", consumer_secret="referral-sandbox-secret",
                    domain="referral-sandbox.my", session=session, version="62.0")
    assert sf.sf_instance == sim.base_url.removeprefix("http://")
    result = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert [r["Name"] for r in result["records"]] == ["Acme", "Globex"]
    assert sf.api_usage["api-usage"].used == 1 and sf.api_usage["api-usage"].total == 15000
    assert sim.request_counts["POST /services/oauth2/token"] == 1


def test_token_endpoint_response_and_errors(sim):
    url = sim.base_url + "/services/oauth2/token"
    ok = requests.post(url, data={"grant_type": "client_credentials", "client_id": "referral-sandbox-client",
                                  "client_secret": "referral-sandbox-secret"})
    body = ok.json()
    assert ok.status_code == 200 and set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at",
                                                   "signature", "scope"}
    assert body["instance_url"] == sim.base_url and body["token_type"] == "Bearer" and body["issued_at"].isdigit()
    assert Api(sim, token=body["access_token"]).get("/limits").status_code == 200
    password = requests.post(url, data={"grant_type": "password", "client_id": "referral-sandbox-client",
                                        "client_secret": "referral-sandbox-secret",
                                        "username": "integration@referral-sandbox.example",
                                        "password": "sandbox-password"})
    assert password.status_code == 200
    claims = {"iss": "referral-sandbox-client", "sub": "integration@referral-sandbox.example",
              "aud": "https://login.salesforce.com", "exp": int(stamps.utcnow().timestamp()) + 180}
    bearer = requests.post(url, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": jwt.encode(claims, "k" * 32, algorithm="HS256")})
    assert bearer.status_code == 200 and bearer.json()["instance_url"] == sim.base_url
    cases = [({"grant_type": "client_credentials"}, ("nope", "x"), "invalid_client_id"),
             ({"grant_type": "client_credentials"}, ("referral-sandbox-client", "wrong"), "invalid_client"),
             ({"grant_type": "password", "client_id": "referral-sandbox-client",
               "client_secret": "referral-sandbox-secret", "username": "integration@referral-sandbox.example",
               "password": "bad"}, None, "invalid_grant"),
             ({"grant_type": "authorization_code"}, None, "unsupported_grant_type")]
    for form, auth, error in cases:
        r = requests.post(url, data=form, auth=auth)
        assert r.status_code == 400 and r.json()["error"] == error
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid_client"):
        Salesforce(consumer_key="referral-sandbox-client", consumer_secret="wrong", domain="referral-sandbox.my",
                   session=session_for_instance(sim.base_url, login_domain="referral-sandbox.my"))


def test_missing_or_unknown_token_is_401_invalid_session_id(sim):
    for token in (None, "bogus"):
        r = Api(sim, token=token).query("SELECT Id FROM Account")
        assert r.status_code == 401
        assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_expired_token_gives_401_and_simple_salesforce_relogs_in(fixture_root):
    with serve_in_thread(make_sim(fixture_root, options={"token_ttl_seconds": 60})) as sim:
        session = session_for_instance(sim.base_url, login_domain="referral-sandbox.my")
        sf = Salesforce(consumer_key="referral-sandbox-client", consumer_secret="referral-sandbox-secret",
                        domain="referral-sandbox.my", session=session, version="62.0")
        direct = sf_client(sim, token=sf.session_id)
        later = stamps.utcnow() + timedelta(seconds=61)
        sim.now = lambda: later
        with pytest.raises(SalesforceExpiredSession) as info:
            direct.query("SELECT Id FROM Account")
        assert info.value.status == 401 and info.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 2  # re-login on INVALID_SESSION_ID
        assert sim.request_counts["POST /services/oauth2/token"] == 2
        assert sf_client(sim).query("SELECT Id FROM Account")["totalSize"] == 2  # the static token never expires


def test_revoke_ends_a_session(sim):
    token = requests.post(sim.base_url + "/services/oauth2/token",
                          data={"grant_type": "client_credentials"},
                          auth=("referral-sandbox-client", "referral-sandbox-secret")).json()["access_token"]
    assert requests.post(sim.base_url + "/services/oauth2/revoke", data={"token": token}).status_code == 200
    assert Api(sim, token=token).get("/limits").status_code == 401


def test_session_adapter_only_for_plain_http():
    production = session_for_instance("https://acme.my.salesforce.com", login_domain="acme.my")
    assert not any(isinstance(a, HttpsToHttpAdapter) for a in production.adapters.values())
    local = session_for_instance("http://127.0.0.1:8701", login_domain="acme.my")
    assert isinstance(local.get_adapter("https://127.0.0.1:8701/services/data/"), HttpsToHttpAdapter)
    assert isinstance(local.get_adapter("https://acme.my.salesforce.com/services/oauth2/token"), HttpsToHttpAdapter)
    assert not isinstance(local.get_adapter("https://example.com/"), HttpsToHttpAdapter)
    with pytest.raises(ValueError):
        HttpsToHttpAdapter("https://acme.my.salesforce.com")


# ---- query and paging --------------------------------------------------------------------------------
def test_query_all_pages_with_batch_size(sim):
    for record in contacts(4500):
        sim.admin_upsert("Contact", record)
    sf = sf_client(sim)
    soql = "SELECT Id, LastName FROM Contact WHERE LastName LIKE 'Bulk%' ORDER BY LastName"
    result = sf.query_all(soql, headers={"Sforce-Query-Options": "batchSize=1000"})
    assert [r["LastName"] for r in result["records"]] == [f"Bulk{i:05d}" for i in range(4500)]
    assert sim.request_counts["GET /services/data/v{version}/query"] == 1
    assert sim.request_counts["GET /services/data/v{version}/query/{locator}"] == 4
    first = Api(sim).query(soql).json()  # default batch: 2,000
    assert (first["totalSize"], first["done"], len(first["records"])) == (4500, False, 2000)
    cursor_id, offset = first["nextRecordsUrl"].rsplit("/", 1)[1].rsplit("-", 1)
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g") and offset == "2000"
    assert first["records"][0]["attributes"] == {"type": "Contact",
                                                 "url": f"/services/data/v62.0/sobjects/Contact/{make_id('003', 10000)}"}
    tiny = Api(sim).query(soql, headers={"Sforce-Query-Options": "batchSize=5"}).json()  # clamped to 200
    assert len(tiny["records"]) == 200
    jump = Api(sim).get(f"/query/{cursor_id}-4400").json()  # any offset of an open cursor
    assert jump["done"] is True and [r["LastName"] for r in jump["records"]][0] == "Bulk04400"


def test_paging_edges(sim):
    sim.collections["Contact"].replace_all(contacts(400))
    api, size = Api(sim), {"Sforce-Query-Options": "batchSize=200"}
    first = api.query("SELECT Id FROM Contact", headers=size).json()
    second = api.get(first["nextRecordsUrl"].removeprefix("/services/data/v62.0")).json()
    assert (len(first["records"]), first["done"]) == (200, False)
    assert (len(second["records"]), second["done"], "nextRecordsUrl" in second) == (200, True, False)
    limited = api.query("SELECT Id FROM Contact ORDER BY LastName DESC LIMIT 250", headers=size).json()
    rest = api.get(limited["nextRecordsUrl"].removeprefix("/services/data/v62.0")).json()
    names = [r["Id"] for r in limited["records"] + rest["records"]]
    assert limited["totalSize"] == 250 and len(rest["records"]) == 50 and rest["done"]
    assert names == [make_id("003", 10_000 + i) for i in range(399, 149, -1)]
    offset = api.query("SELECT Id FROM Contact ORDER BY LastName LIMIT 3 OFFSET 397").json()
    assert [r["Id"] for r in offset["records"]] == [make_id("003", 10_000 + i) for i in (397, 398, 399)]
    assert api.query("SELECT Id FROM Contact WHERE LastName = 'nobody'").json() == {
        "totalSize": 0, "done": True, "records": []}
    exact = api.query("SELECT Id FROM Contact LIMIT 200", headers=size).json()
    assert (exact["totalSize"], exact["done"], "nextRecordsUrl" in exact) == (200, True, False)


def test_query_all_with_include_deleted(sim):
    sf = sf_client(sim)
    live = sf.query_all("SELECT Id, IsDeleted FROM Contact ORDER BY Id")
    assert [r["Id"] for r in live["records"]] == [C1, C2, C3, C4]
    assert {r["IsDeleted"] for r in live["records"]} == {False}  # a missing checkbox reads false
    everything = sf.query_all("SELECT Id, IsDeleted FROM Contact ORDER BY Id", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]][-1] == (C5, True)
    assert sim.request_counts["GET /services/data/v{version}/queryAll"] == 1
    assert sf.query("SELECT COUNT() FROM Contact") == {"totalSize": 4, "done": True, "records": []}


def test_cursor_is_a_snapshot_taken_when_the_query_ran(sim):
    for record in contacts(450):
        sim.admin_upsert("Contact", record)
    api = Api(sim)
    page1 = api.query("SELECT Id, LastName, Email FROM Contact WHERE LastName LIKE 'Bulk%' ORDER BY LastName",
                      headers={"Sforce-Query-Options": "batchSize=200"}).json()
    target = make_id("003", 10_000 + 300)
    sim.admin_upsert("Contact", {"Id": target, "Email": "changed@example.com"})
    assert api.delete(f"/sobjects/Contact/{make_id('003', 10_000 + 250)}").status_code == 204
    sim.admin_upsert("Contact", {"LastName": "Bulk99999"})  # new match after the query ran
    page2 = api.get(page1["nextRecordsUrl"].removeprefix("/services/data/v62.0")).json()
    page3 = api.get(page2["nextRecordsUrl"].removeprefix("/services/data/v62.0")).json()
    rows = page1["records"] + page2["records"] + page3["records"]
    assert page3["done"] and page3["totalSize"] == 450 and len(rows) == 450
    assert [r["LastName"] for r in rows] == [f"Bulk{i:05d}" for i in range(450)]
    assert next(r for r in rows if r["Id"] == target)["Email"] == "bulk300@example.com"


def test_query_locator_expires_and_garbage_locators_are_refused(sim):
    for record in contacts(300):
        sim.admin_upsert("Contact", record)
    api = Api(sim)
    first = api.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"}).json()
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    assert api.get(f"/query/{locator}").status_code == 200
    later = stamps.utcnow() + timedelta(minutes=16)
    sim.now = lambda: later
    for bad in (locator, "01gXXXXXXXXXXXXXXX-200", "nonsense"):
        r = api.get(f"/query/{bad}")
        assert r.status_code == 404 and r.json() == [{"message": "invalid query locator",
                                                      "errorCode": "INVALID_QUERY_LOCATOR"}]


def test_at_most_ten_open_cursors_per_user(sim):
    for record in contacts(201):
        sim.admin_upsert("Contact", record)
    api = Api(sim)
    urls = [api.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"}).json()
            ["nextRecordsUrl"].removeprefix("/services/data/v62.0") for _ in range(11)]
    assert api.get(urls[0]).status_code == 404  # the oldest was released
    assert api.get(urls[1]).status_code == 200 and api.get(urls[10]).status_code == 200


def test_keyset_paging_with_equal_stamps_across_a_page_boundary(sim):
    tied = contacts(25, day=3, same_stamp=True)
    sim.collections["Contact"].replace_all(tied)
    api, seen, where = Api(sim), [], "SystemModstamp >= 2025-01-01T00:00:00Z"
    while True:
        page = api.query(f"SELECT Id, SystemModstamp FROM Contact WHERE {where} ORDER BY SystemModstamp, Id "
                         "LIMIT 10").json()["records"]
        seen += [r["Id"] for r in page]
        if len(page) < 10:
            break
        x, y = page[-1]["SystemModstamp"], page[-1]["Id"]
        where = f"SystemModstamp > {x} OR (SystemModstamp = {x} AND Id > '{y}')"
    assert seen == sorted(r["Id"] for r in tied)
    assert {r["SystemModstamp"] for r in tied} == {"2025-02-03T00:00:00.000+0000"}


def test_soql_errors_over_http(sim):
    api = Api(sim)
    r = api.query("SELECT Id FROM Contact WHERE")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY"
    r = api.query("SELECT Id, Foo__c FROM Contact")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo__c' on entity 'Contact'" in r.json()[0]["message"]
    r = api.query("SELECT Id FROM Lead")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_TYPE"
    assert api.get("/query").json() == [{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf_client(sim).query("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01'")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_fields_seen_in_the_data_are_part_of_the_type(sim):
    r = Api(sim).query("SELECT Id, Shoe_Size__c FROM Contact WHERE Shoe_Size__c > 40").json()
    assert [(x["Id"], x["Shoe_Size__c"]) for x in r["records"]] == [(C3, 42)]


# ---- sObject resources -------------------------------------------------------------------------------------------
def test_get_update_delete_a_record(sim):
    api = Api(sim)
    rec = api.get(f"/sobjects/Contact/{C1}").json()
    assert rec["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{C1}"}
    assert rec["Email"] == "ann@example.com" and rec["Loyalty_VIP_Tier__c"] is None and "SystemModstamp" in rec
    assert api.get(f"/sobjects/Contact/{C1[:15]}", params={"fields": "Id,LastName"}).json() == {
        "attributes": rec["attributes"], "Id": C1, "LastName": "Smith"}
    assert api.patch(f"/sobjects/Contact/{C1}", json={"Loyalty_Points_Balance__c": 150, "referral_code__c": "ANN10"}
                     ).status_code == 204
    stored = sim.collections["Contact"].get(C1)
    assert stored["Loyalty_Points_Balance__c"] == 150.0 and stored["Referral_Code__c"] == "ANN10"
    assert stored["SystemModstamp"] > FIXTURES["Contact"][0]["SystemModstamp"]
    assert stored["LastModifiedDate"] == stored["SystemModstamp"]
    assert api.delete(f"/sobjects/Contact/{C1}").status_code == 204
    gone = api.get(f"/sobjects/Contact/{C1}")
    assert gone.status_code == 404 and gone.json() == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}]
    assert api.get(f"/sobjects/Contact/{make_id('003', 5)}").json()[0]["errorCode"] == "NOT_FOUND"
    assert "Provided external ID field does not exist" in api.get("/sobjects/Contact/xyz").json()[0]["message"]
    assert api.get("/sobjects/Lead/00Q000000000001").status_code == 404


@pytest.mark.parametrize("type_name,body,code,fields", [
    ("Contact", {"FirstName": "No"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
    ("Account", {"CurrencyIsoCode": "USD"}, "REQUIRED_FIELD_MISSING", ["Name"]),
    ("Referral_Reward__c", {"Reward_Key__c": "k"}, "REQUIRED_FIELD_MISSING", ["Status__c"]),
    ("Contact", {"LastName": "X", "SystemModstamp": "2025-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE",
     ["SystemModstamp"]),
    ("Contact", {"LastName": "X", "Email": "nope"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
    ("Contact", {"LastName": "X" * 81}, "STRING_TOO_LONG", ["LastName"]),
    ("Order", {"AccountId": A1, "EffectiveDate": "2025-01-01", "Status": "Shipped"},
     "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"]),
    ("Contact", {"LastName": "X", "AccountId": C1}, "FIELD_INTEGRITY_EXCEPTION", ["AccountId"]),
    ("Contact", {"LastName": "X", "AccountId": "garbage"}, "MALFORMED_ID", ["AccountId"]),
    ("Contact", {"LastName": "X", "AccountId": make_id("001", 77)}, "INVALID_CROSS_REFERENCE_KEY", ["AccountId"]),
    ("Referral__c", {"Referral_Key__c": "REF-1"}, "DUPLICATE_VALUE", ["Referral_Key__c"]),
])
def test_create_validation_errors(sim, type_name, body, code, fields):
    r = Api(sim).post(f"/sobjects/{type_name}", json=body)
    assert r.status_code == 400
    (error,) = r.json()
    assert error["errorCode"] == code and error["fields"] == fields


def test_create_unknown_field_and_bad_json_types(sim):
    api = Api(sim)
    r = api.post("/sobjects/Contact", json={"LastName": "X", "Nope__c": 1})
    assert r.status_code == 400 and r.json() == [{"message": "No such column 'Nope__c' on sobject of type Contact",
                                                  "errorCode": "INVALID_FIELD"}]
    r = api.post("/sobjects/Contact", json={"LastName": "X", "Loyalty_Points_Balance__c": "many"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert api.post("/sobjects/Contact", data="{not json").json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_create_fills_system_and_derived_fields(sim):
    sf = sf_client(sim)
    created = sf.Contact.create({"FirstName": "Cy", "LastName": "New", "Email": "cy@example.com", "AccountId": A1,
                                 "MailingCountry": ""})
    rec = sim.collections["Contact"].get(created["id"])
    assert created["success"] and created["id"].startswith("003") and len(created["id"]) == 18
    assert rec["Name"] == "Cy New" and rec["IsDeleted"] is False and rec["MailingCountry"] is None
    assert rec["CreatedDate"] == rec["SystemModstamp"] == rec["LastModifiedDate"]
    order = sf.Order.create({"AccountId": A1, "EffectiveDate": "2025-03-01T00:00:00Z", "Status": "Draft"})
    stored = sim.collections["Order"].get(order["id"])
    assert stored["EffectiveDate"] == "2025-03-01" and stored["OrderNumber"].isdigit() and stored["TotalAmount"] == 0
    item = sf.OrderItem.create({"OrderId": order["id"], "PricebookEntryId": make_id("01u", 1), "Quantity": 3,
                                "UnitPrice": 9.5})
    assert sim.collections["OrderItem"].get(item["id"])["TotalPrice"] == 28.5
    assert sim.collections["Order"].get(order["id"])["TotalAmount"] == 28.5  # roll-up
    reward = sf.Referral_Reward__c.create({"Reward_Key__c": "rw-new", "Status__c": "approved",
                                           "Status_Changed_At__c": "2025-03-01T12:00:00+02:00"})
    stored = sim.collections["Referral_Reward__c"].get(reward["id"])
    assert stored["Name"].startswith("RWD-") and stored["Status_Changed_At__c"] == "2025-03-01T10:00:00.000+0000"


def test_upsert_by_external_id_through_simple_salesforce(sim):
    sf = sf_client(sim)
    body = {"Advocate_Contact__c": C1, "Friend_Contact__c": C2, "Referral_Code__c": "ANN10", "Market__c": "us"}
    assert sf.Referral__c.upsert("Referral_Key__c/ref-2", body) == 201
    assert sf.Referral__c.upsert("Referral_Key__c/ref-2", {**body, "Market__c": "eu"}) == 200
    raw = sf.Referral__c.upsert("Referral_Key__c/ref-1", body, raw_response=True)
    assert raw.status_code == 200 and raw.json() == {"id": R1, "success": True, "errors": [], "created": False}
    stored = [r for r in sim.collections["Referral__c"].values() if r.get("Referral_Key__c") == "ref-2"]
    assert len(stored) == 1 and stored[0]["Market__c"] == "eu" and stored[0]["Name"].startswith("REF-")
    assert sf_client(sim, version="45.0").Referral__c.upsert("Referral_Key__c/ref-2", body) == 204
    assert sim.collections["Referral__c"].get(stored[0]["Id"])["Market__c"] == "us"
    with pytest.raises(SalesforceMoreThanOneRecord) as info:
        sf.Contact.upsert("Referral_Customer_Key__c/dup-key", {"LastName": "X"})
    assert sorted(info.value.content) == sorted(f"/services/data/v62.0/sobjects/Contact/{c}" for c in (C3, C4))
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.upsert("Email/ann@example.com", {"LastName": "X"})
    assert sf.Referral__c.get_by_custom_id("Referral_Key__c", "ref-1")["Id"] == R1
    r = Api(sim).patch("/sobjects/Referral__c/Referral_Key__c/ref-9", params={"updateOnly": "true"},
                       json={"Market__c": "x"})
    assert r.status_code == 404


def test_updated_and_deleted_replication_resources(sim):
    sf = sf_client(sim)
    start = stamps.utcnow() - timedelta(minutes=5)
    sf.Contact.update(C2, {"Loyalty_VIP_Tier__c": "Gold"})
    sf.Contact.delete(C4)
    end = stamps.utcnow() + timedelta(minutes=1)
    assert sf.Contact.updated(start, end)["ids"] == [C2]
    deleted = sf.Contact.deleted(start, end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [C4]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.updated(start - timedelta(days=31), end)


def test_describe_and_discovery(sim):
    sf = sf_client(sim)
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert fields["LastName"]["nillable"] is False and fields["SystemModstamp"]["updateable"] is False
    assert fields["Referral_Customer_Key__c"]["externalId"] is True
    assert {o["name"] for o in sf.describe()["sobjects"]} == set(SIX_TYPES)
    versions = requests.get(sim.base_url + "/services/data/").json()
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in versions
    assert Api(sim, version="99.0").get("/limits").status_code == 404
    r = Api(sim).put("/limits")
    assert r.status_code == 405 and r.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert Api(sim).get("/nothing/here").json() == [{"message": "The requested resource does not exist",
                                                     "errorCode": "NOT_FOUND"}]


# ---- limits and faults ---------------------------------------------------------------------------------------------
def test_daily_allocation_header_limits_and_request_limit_exceeded(fixture_root):
    with serve_in_thread(make_sim(fixture_root, rate_limit={"daily_api_requests": 3})) as sim:
        api = Api(sim)
        assert api.query("SELECT Id FROM Account").headers["Sforce-Limit-Info"] == "api-usage=1/3"
        assert api.get("/limits").json()["DailyApiRequests"] == {"Max": 3, "Remaining": 1}
        assert api.get(f"/sobjects/Account/{A2}").headers["Sforce-Limit-Info"] == "api-usage=3/3"
        r = api.query("SELECT Id FROM Account")
        assert r.status_code == 403 and r.headers["Sforce-Limit-Info"] == "api-usage=3/3"
        assert r.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        with pytest.raises(SalesforceRefusedRequest):
            sf_client(sim).query("SELECT Id FROM Account")
        assert requests.post(sim.base_url + "/services/oauth2/token", data={"grant_type": "client_credentials"},
                             auth=("referral-sandbox-client", "referral-sandbox-secret")).status_code == 200


def test_requests_per_second_limit(fixture_root):
    with serve_in_thread(make_sim(fixture_root, rate_limit={"requests_per_second": 0.001, "burst": 2})) as sim:
        api = Api(sim)
        assert [api.get("/limits").status_code for _ in range(2)] == [200, 200]
        r = api.get("/limits")
        assert r.status_code == 403 and r.json()[0]["message"] == "ConcurrentPerOrgLongTxn Limit exceeded."


def test_injected_faults_in_salesforce_shapes(sim):
    api, faults = Api(sim), sim.base_url + "/_sandbox/faults"
    try:
        requests.post(faults, json={"p_429": 1.0})
        r = api.query("SELECT Id FROM Account")
        assert r.status_code == 403 and r.headers["Sforce-Limit-Info"].startswith("api-usage=")
        assert r.json() == [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        requests.post(faults, json={"p_429": 1.0, "retry_after_seconds": 3, "options": {"throttle_style": "http_429"}})
        r = api.query("SELECT Id FROM Account")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        requests.post(faults, json={"p_429": 0, "p_500": 1.0})
        r = api.post("/sobjects/Account", json={"Name": "Never"})
        assert r.status_code == 500 and r.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
        assert not any(a["Name"] == "Never" for a in sim.collections["Account"].values())
        with pytest.raises(SalesforceGeneralError) as info:
            sf_client(sim).query("SELECT Id FROM Account")
        assert info.value.status == 500
        requests.post(faults, json={"p_500": 0, "p_503": 1.0})
        r = api.get("/limits")
        assert r.status_code == 503 and r.json() == [{"message": "Server temporarily unavailable. Please try again "
                                                                 "later.", "errorCode": "SERVER_UNAVAILABLE"}]
        requests.post(faults, json={"p_503": 0, "p_502": 1.0})
        r = api.get("/limits")
        assert r.status_code == 502 and r.headers["content-type"].startswith("text/html") and "Bad Gateway" in r.text
    finally:
        requests.post(faults, json={"p_429": 0, "p_500": 0, "p_502": 0, "p_503": 0, "retry_after_seconds": 1,
                                    "options": {"throttle_style": "concurrent_limit"}})


# ---- admin routes, state and environment ---------------------------------------------------------------------------
def test_state_shape_and_request_counts(sim):
    Api(sim).post("/sobjects/Contact", json={"LastName": "Fresh"})
    state = requests.get(sim.base_url + "/_sandbox/state").json()
    assert sorted(state) == sorted(SIX_TYPES + ["request_counts"])
    assert state["Account"] == FIXTURES["Account"]
    assert state["Order"][1]["Status"] == "Shipped?" and state["Order"][1]["TotalAmount"] == -5  # served as given
    fresh = next(r for r in state["Contact"] if r["LastName"] == "Fresh")
    assert {"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
            "SystemModstamp", "Name"} <= set(fresh)
    assert any(r["Id"] == C5 and r["IsDeleted"] is True for r in state["Contact"])
    assert state["request_counts"] == {"POST /services/data/v{version}/sobjects/{sobject}": 1}


def test_admin_upsert_moves_stamps_and_deletes(sim):
    url = sim.base_url + "/_sandbox/records"
    r = requests.post(url, json={"collection": "Contact", "records": [{"Id": C1, "Email": "new@example.com"},
                                                                      {"Id": C2, "IsDeleted": True},
                                                                      {"LastName": "NoId", "Email": "bad"}]})
    first, second, third = r.json()["records"]
    assert first["Email"] == "new@example.com" and first["LastName"] == "Smith"
    assert first["SystemModstamp"] > FIXTURES["Contact"][0]["SystemModstamp"]
    assert first["SystemModstamp"].endswith("+0000") and first["LastModifiedDate"] == first["SystemModstamp"]
    assert third["Id"].startswith("003") and third["Email"] == "bad"  # admin writes are not validated
    live = {x["Id"] for x in Api(sim).query("SELECT Id FROM Contact").json()["records"]}
    every = {x["Id"] for x in Api(sim).query("SELECT Id FROM Contact", all_rows=True).json()["records"]}
    assert C2 not in live and C2 in every and third["Id"] in live


def test_state_persists_across_restart(fixture_root, tmp_path):
    with serve_in_thread(make_sim(fixture_root, state_dir=tmp_path)) as sim:
        created = Api(sim).post("/sobjects/Contact", json={"LastName": "Kept"}).json()["id"]
    with serve_in_thread(make_sim(fixture_root, state_dir=tmp_path)) as sim:
        r = Api(sim).query(f"SELECT Id, LastName, Shoe_Size__c FROM Contact WHERE Id = '{created}'")
        assert [x["LastName"] for x in r.json()["records"]] == ["Kept"]
        assert r.headers["Sforce-Limit-Info"] == "api-usage=2/15000"
        assert sim.request_counts["POST /services/data/v{version}/sobjects/{sobject}"] == 1


def test_env_vars(sim):
    assert sim.env_vars("http://127.0.0.1:8701") == {
        "SALESFORCE_INSTANCE_URL": "http://127.0.0.1:8701", "SALESFORCE_CLIENT_ID": "referral-sandbox-client",
        "SALESFORCE_CLIENT_SECRET": "referral-sandbox-secret", "SALESFORCE_DOMAIN": "referral-sandbox.my",
        "SALESFORCE_API_VERSION": "62.0"}


def test_order_fixture_is_served_exactly(sim):
    rec = Api(sim).query(f"SELECT Id, OrderNumber, Status, TotalAmount, Coupon_Code__c FROM Order WHERE Id = '{O1}'")
    assert rec.json()["records"][0] == {"attributes": {"type": "Order",
                                                       "url": f"/services/data/v62.0/sobjects/Order/{O1}"},
                                        "Id": O1, "OrderNumber": "00000101", "Status": "Activated",
                                        "TotalAmount": 120.0, "Coupon_Code__c": "FRIEND-ANN"}
