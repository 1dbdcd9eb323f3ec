"""Salesforce simulator over real HTTP: sObject Collections (create / update / delete / upsert,
allOrNone) and Bulk API 2.0 query and ingest jobs, driven by simple-salesforce."""
from __future__ import annotations

import csv
import io

import pytest
from simple_salesforce.exceptions import SalesforceOperationError

from referral_pipeline.sandbox.salesforce.schema import make_id
from referral_pipeline.sandbox.testing import serve_in_thread

from .salesforce_support import A1, C1, C2, C3, C5, W1, Api, make_sim, sf_client, write_fixtures


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve_in_thread(make_sim(write_fixtures(tmp_path_factory.mktemp("sf-bulk")))) as sim:
        yield sim


@pytest.fixture
def sim(served):
    served.reset()
    yield served


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def reward(key: str, **fields) -> dict:
    return {"attributes": {"type": "Referral_Reward__c"}, "Reward_Key__c": key, **fields}


def rewards_by_key(sim) -> dict[str, dict]:
    return {r["Reward_Key__c"]: r for r in sim.collections["Referral_Reward__c"].values()}


# ---- sObject Collections -------------------------------------------------------------------------------
def test_collections_upsert_one_record_fails_the_rest_succeed(sim):
    sf = sf_client(sim)
    result = sf.restful("composite/sobjects/Referral_Reward__c/Reward_Key__c", method="PATCH", json={
        "allOrNone": False,
        "records": [reward("rw-1", Status__c="approved", Status_Reason__c="ok"),
                    reward("rw-2", Status__c="pending", Amount__c=20, CurrencyIsoCode="USD", Advocate_Contact__c=C1),
                    reward("rw-3", Amount__c=5),
                    reward("rw-4", Status__c="on_hold")]})
    assert result[0] == {"id": W1, "success": True, "errors": [], "created": False}
    assert result[1]["success"] and result[1]["created"] is True and result[1]["id"].startswith("a0B")
    assert result[2] == {"success": False, "created": False, "errors": [{
        "statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Status__c]",
        "fields": ["Status__c"]}]}
    assert result[3]["success"] and result[3]["created"]
    stored = rewards_by_key(sim)
    assert set(stored) == {"rw-1", "rw-2", "rw-4"}
    assert stored["rw-1"]["Status__c"] == "approved" and stored["rw-1"]["Amount__c"] == 20.0
    assert stored["rw-2"]["Amount__c"] == 20.0 and stored["rw-2"]["Advocate_Contact__c"] == C1
    assert sim.request_counts["PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}"] == 1


def test_collections_all_or_none_rolls_everything_back(sim):
    before = {k: dict(v) for k, v in rewards_by_key(sim).items()}
    result = sf_client(sim).restful("composite/sobjects/Referral_Reward__c/Reward_Key__c", method="PATCH", json={
        "allOrNone": True,
        "records": [reward("rw-1", Status__c="issued"), reward("rw-9", Status__c="pending"),
                    reward("rw-8", Status__c="pending", Advocate_Contact__c="not-an-id")]})
    rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
              "message": "Record rolled back because not all records were valid and the request was using "
                         "AllOrNone header", "fields": []}
    assert result[0] == {"success": False, "errors": [rolled], "created": False}
    assert result[1] == {"success": False, "errors": [rolled], "created": False}
    assert result[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert rewards_by_key(sim) == before


def test_collections_upsert_duplicates_and_several_matches(sim):
    result = sf_client(sim).restful("composite/sobjects/Contact/Referral_Customer_Key__c", method="PATCH", json={
        "records": [{"attributes": {"type": "Contact"}, "Referral_Customer_Key__c": "dup-key", "LastName": "A"},
                    {"attributes": {"type": "Contact"}, "Referral_Customer_Key__c": "k-1", "LastName": "B"},
                    {"attributes": {"type": "Contact"}, "Referral_Customer_Key__c": "K-1", "LastName": "C"},
                    {"attributes": {"type": "Contact"}, "LastName": "D"}]})
    assert [r["errors"][0]["statusCode"] for r in result] == [
        "DUPLICATE_EXTERNAL_ID", "DUPLICATE_VALUE", "DUPLICATE_VALUE", "MISSING_ARGUMENT"]
    assert result[1]["errors"][0]["message"] == "Duplicate external id specified: k-1"


def test_collections_create_update_delete_and_retrieve(sim):
    sf = sf_client(sim)
    created = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Name": "Initech", "CurrencyIsoCode": "USD"},
        {"attributes": {"type": "Contact"}, "LastName": "Lumbergh", "AccountId": A1},
        {"attributes": {"type": "Contact"}, "FirstName": "NoLast"},
        {"attributes": {"type": "Contact"}, "Id": C1, "LastName": "Again"}]})
    assert [r["success"] for r in created] == [True, True, False, False]
    assert created[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert created[3]["errors"][0] == {"statusCode": "INVALID_FIELD", "message": "cannot specify Id in an insert call",
                                       "fields": ["Id"]}
    updated = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "id": C1, "Loyalty_VIP_Tier__c": "Gold"},
        {"attributes": {"type": "Contact"}, "id": C5, "Loyalty_VIP_Tier__c": "Gold"},
        {"attributes": {"type": "Contact"}, "Loyalty_VIP_Tier__c": "Gold"},
        {"attributes": {"type": "Contact"}, "id": C2, "SystemModstamp": "2020-01-01T00:00:00Z"}]})
    assert updated[0] == {"id": C1, "success": True, "errors": []}
    assert [u["errors"][0]["statusCode"] for u in updated[1:]] == [
        "ENTITY_IS_DELETED", "MISSING_ARGUMENT", "INVALID_FIELD_FOR_INSERT_UPDATE"]
    assert sim.collections["Contact"].get(C1)["Loyalty_VIP_Tier__c"] == "Gold"
    fetched = sf.restful(f"composite/sobjects/Contact", params={"ids": f"{C1},{C5}", "fields": "Id,Loyalty_VIP_Tier__c"})
    assert fetched[0]["Loyalty_VIP_Tier__c"] == "Gold" and fetched[1] is None
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{created[1]['id']},{C5},bad"})
    assert [d["success"] for d in deleted] == [True, False, False]
    assert sim.collections["Contact"].get(created[1]["id"])["IsDeleted"] is True


def test_collections_request_level_errors(sim):
    api = Api(sim)
    too_many = [reward(f"k{i}", Status__c="pending") for i in range(201)]
    r = api.patch("/composite/sobjects/Referral_Reward__c/Reward_Key__c", json={"records": too_many})
    assert r.status_code == 400 and r.json() == [{"message": "record limit reached. cannot submit more than 200 "
                                                             "records into this call", "errorCode": "EXCEEDED_ID_LIMIT"}]
    r = api.post("/composite/sobjects", json={"records": [{"Name": "no type"}]})
    assert r.status_code == 400 and r.json() == [{"message": "Must send a concrete entity type.",
                                                  "errorCode": "INVALID_TYPE"}]
    r = api.post("/composite/sobjects", json={"records": [{"attributes": {"type": "Contact"}, "LastName": "x",
                                                           "Bogus__c": 1}]})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    r = api.patch("/composite/sobjects/Referral_Reward__c/Status__c", json={"records": []})
    assert r.status_code == 404
    assert Api(sim, version="45.0").patch("/composite/sobjects/Referral_Reward__c/Reward_Key__c",
                                          json={"records": []}).status_code == 404
    assert len(rewards_by_key(sim)) == 1


# ---- Bulk API 2.0 query ---------------------------------------------------------------------------------------
def test_bulk2_query_in_several_locator_pages(sim):
    for i in range(250):
        sim.admin_upsert("Contact", {"LastName": f"Q{i:03d}", "HasOptedOutOfEmail": i % 2 == 0,
                                     "Loyalty_Points_Balance__c": i})
    sf = sf_client(sim)
    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName, HasOptedOutOfEmail, Loyalty_Points_Balance__c, "
                                        "SystemModstamp FROM Contact WHERE LastName LIKE 'Q%' ORDER BY LastName",
                                        max_records=100, wait=0))
    assert len(pages) == 3
    parsed = [row for page in pages for row in rows(page)]
    assert [r["LastName"] for r in parsed] == [f"Q{i:03d}" for i in range(250)]
    assert list(parsed[0]) == ["Id", "LastName", "HasOptedOutOfEmail", "Loyalty_Points_Balance__c", "SystemModstamp"]
    assert parsed[0]["HasOptedOutOfEmail"] == "true" and parsed[1]["Loyalty_Points_Balance__c"] == "1"
    assert parsed[0]["SystemModstamp"].endswith("Z") and len(parsed[0]["SystemModstamp"]) == 24
    assert sim.request_counts["GET /services/data/v{version}/jobs/query/{job_id}/results"] == 3
    deleted = list(sf.bulk2.Contact.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", wait=0))
    assert [r["Id"] for r in rows(deleted[0])] == [C5]


def test_bulk2_query_job_states_locators_and_errors(sim):
    api = Api(sim)
    job = api.post("/jobs/query", json={"operation": "query", "query": "SELECT Id, Name FROM Account"}).json()
    assert job["state"] == "UploadComplete" and job["contentType"] == "CSV" and job["id"].startswith("750")
    early = api.get(f"/jobs/query/{job['id']}/results")
    assert early.status_code == 412 and early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    assert api.get(f"/jobs/query/{job['id']}").json()["state"] == "InProgress"
    info = api.get(f"/jobs/query/{job['id']}").json()
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 2 and info["jobType"] == "V2Query"
    first = api.get(f"/jobs/query/{job['id']}/results", params={"maxRecords": 1})
    assert first.headers["Sforce-NumberOfRecords"] == "1" and first.headers["content-type"].startswith("text/csv")
    assert first.headers["Sforce-Locator"] not in ("", "null")
    last = api.get(f"/jobs/query/{job['id']}/results", params={"maxRecords": 1, "locator": first.headers["Sforce-Locator"]})
    assert last.headers["Sforce-Locator"] == "null" and last.text == "Id,Name\n" + f"{sorted_accounts(sim)[1]}\n"
    assert Api(sim, version="61.0").get(f"/jobs/query/{job['id']}/results").status_code == 409
    bad = api.post("/jobs/query", json={"operation": "query", "query": "SELECT Nope FROM Account"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    assert api.get("/jobs/query/750000000000000AAA").status_code == 404
    assert api.delete(f"/jobs/query/{job['id']}").status_code == 204


def sorted_accounts(sim) -> list[str]:
    return [f"{r['Id']},{r['Name']}" for r in sorted(sim.collections["Account"].values(),
                                                    key=lambda r: (r["SystemModstamp"], r["Id"]))]


# ---- Bulk API 2.0 ingest ----------------------------------------------------------------------------------------
def test_bulk2_upsert_with_failed_records(sim):
    sf = sf_client(sim)
    records = [{"Reward_Key__c": "rw-1", "Status__c": "approved", "Amount__c": "25"},
               {"Reward_Key__c": "rw-2", "Status__c": "pending", "Advocate_Contact__c": C2,
                "Status_Changed_At__c": "2025-03-01T10:00:00Z"},
               {"Reward_Key__c": "rw-3", "Amount__c": "5"},
               {"Reward_Key__c": "rw-4", "Status__c": "pending", "Amount__c": "lots"},
               {"Reward_Key__c": "rw-5", "Status__c": "pending", "Advocate_Contact__c": make_id("003", 4242)}]
    (summary,) = sf.bulk2.Referral_Reward__c.upsert(records=records, external_id_field="Reward_Key__c", wait=0)
    assert summary["numberRecordsProcessed"] == 5 and summary["numberRecordsFailed"] == 3
    failed = {r["Reward_Key__c"]: r for r in rows(sf.bulk2.Referral_Reward__c.get_failed_records(summary["job_id"]))}
    assert failed["rw-3"]["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Status__c]:Status__c --"
    assert failed["rw-4"]["sf__Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:Amount__c")
    assert failed["rw-5"]["sf__Error"] == "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:Advocate_Contact__c --"
    assert list(failed["rw-3"])[:2] == ["sf__Id", "sf__Error"] and failed["rw-3"]["Amount__c"] == "5"
    ok = {r["Reward_Key__c"]: r for r in rows(sf.bulk2.Referral_Reward__c.get_successful_records(summary["job_id"]))}
    assert ok["rw-1"]["sf__Id"] == W1 and ok["rw-1"]["sf__Created"] == "false"
    assert ok["rw-2"]["sf__Created"] == "true" and ok["rw-2"]["sf__Id"].startswith("a0B")
    stored = rewards_by_key(sim)
    assert set(stored) == {"rw-1", "rw-2"} and stored["rw-1"]["Amount__c"] == 25.0
    assert stored["rw-2"]["Status_Changed_At__c"] == "2025-03-01T10:00:00.000+0000"
    assert stored["rw-1"]["CurrencyIsoCode"] == "USD"  # an absent column leaves the field alone
    unprocessed = list(csv.reader(io.StringIO(sf.bulk2.Referral_Reward__c.get_unprocessed_records(summary["job_id"]))))
    assert unprocessed == [list(failed["rw-3"])[2:]]  # the header only: every row was processed


def test_bulk2_ingest_raw_flow_csv_conventions_and_states(sim):
    api = Api(sim)
    job = api.post("/jobs/ingest", json={"object": "Contact", "operation": "update", "contentType": "CSV",
                                         "lineEnding": "CRLF", "columnDelimiter": "SEMICOLON"}).json()
    assert job["state"] == "Open" and job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job['id']}/batches"
    body = (f"Id;Email;MailingCountry;Loyalty_VIP_Tier__c\r\n{C1};ann2@example.com;;#N/A\r\n"
            f"{C2};;DE;Gold\r\n;x@example.com;;\r\n{make_id('003', 999)};;FR;\r\n")
    sim.collections["Contact"].put({**sim.collections["Contact"].get(C1), "Loyalty_VIP_Tier__c": "Silver"})
    upload = api.put(f"/jobs/ingest/{job['id']}/batches", data=body.encode(),
                     headers={"Content-Type": "text/csv"})
    assert upload.status_code == 201 and upload.content == b""
    assert api.put(f"/jobs/ingest/{job['id']}/batches", data=body.encode()).status_code == 400
    closed = api.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}).json()
    assert closed["state"] == "UploadComplete"
    assert api.get(f"/jobs/ingest/{job['id']}").json()["state"] == "InProgress"
    info = api.get(f"/jobs/ingest/{job['id']}").json()
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 4, 2)
    ann, bob = sim.collections["Contact"].get(C1), sim.collections["Contact"].get(C2)
    assert ann["Email"] == "ann2@example.com" and ann["MailingCountry"] == "US" and ann["Loyalty_VIP_Tier__c"] is None
    assert bob["MailingCountry"] == "DE" and bob["Loyalty_VIP_Tier__c"] == "Gold" and bob["Email"] == "bob@example.com"
    failed = api.get(f"/jobs/ingest/{job['id']}/failedResults").text
    assert failed.startswith('"sf__Id";"sf__Error";"Id";"Email"') and failed.count("\r\n") == 3
    assert "MISSING_ARGUMENT:Id not specified in an update call: --" in failed
    assert f'"{make_id("003", 999)}";"INVALID_CROSS_REFERENCE_KEY:invalid cross reference id: --"' in failed
    for kind in ("unprocessedrecords", "unprocessedRecords"):
        assert api.get(f"/jobs/ingest/{job['id']}/{kind}").text == '"Id";"Email";"MailingCountry";"Loyalty_VIP_Tier__c"\r\n'
    assert api.patch(f"/jobs/ingest/{job['id']}", json={"state": "Aborted"}).status_code == 400
    listed = api.get("/jobs/ingest").json()
    assert listed["done"] is True and [j["id"] for j in listed["records"]] == [job["id"]]


def test_bulk2_aborted_job_keeps_rows_unprocessed(sim):
    api = Api(sim)
    job = api.post("/jobs/ingest", json={"object": "Contact", "operation": "insert"}).json()
    api.put(f"/jobs/ingest/{job['id']}/batches", data=b"LastName,Email\nNew,new@example.com\n")
    assert api.patch(f"/jobs/ingest/{job['id']}", json={"state": "Aborted"}).json()["state"] == "Aborted"
    assert rows(api.get(f"/jobs/ingest/{job['id']}/unprocessedrecords").text) == [
        {"LastName": "New", "Email": "new@example.com"}]
    assert not any(c.get("LastName") == "New" for c in sim.collections["Contact"].values())


def test_bulk2_insert_and_unknown_column_fails_the_job(sim):
    sf = sf_client(sim)
    (summary,) = sf.bulk2.Contact.insert(records=[{"LastName": "Ins1", "Email": "i1@example.com"},
                                                  {"LastName": "Ins2", "Email": "broken"}], wait=0)
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (2, 1)
    assert [c["Email"] for c in sim.collections["Contact"].values() if c.get("LastName") == "Ins1"] == ["i1@example.com"]
    with pytest.raises(SalesforceOperationError, match="Field name not found : Shoe__c"):
        sf.bulk2.Contact.insert(records=[{"LastName": "X", "Shoe__c": "1"}], wait=0)
    failed_job = next(j for j in sim.bulk.ingest_jobs.values() if j.state == "Failed")
    assert failed_job.error_message == "InvalidBatch : Field name not found : Shoe__c"


def test_bulk2_delete_and_job_validation(sim):
    sf = sf_client(sim)
    (summary,) = sf.bulk2.Contact.delete(records=[{"Id": C3}], wait=0)
    assert summary["numberRecordsFailed"] == 0 and sim.collections["Contact"].get(C3)["IsDeleted"] is True
    api = Api(sim)
    for body, fragment in [({"object": "Lead", "operation": "insert"}, "Unable to find object"),
                           ({"object": "Contact", "operation": "merge"}, "Invalid operation"),
                           ({"object": "Contact", "operation": "upsert", "externalIdFieldName": "Email"},
                            "External ID field"),
                           ({"object": "Contact", "operation": "insert", "contentType": "JSON"}, "content type")]:
        r = api.post("/jobs/ingest", json=body)
        assert r.status_code == 400 and fragment in r.json()[0]["message"]
    assert Api(sim, version="40.0").post("/jobs/ingest", json={"object": "Contact", "operation": "insert"}
                                         ).status_code == 404
    requests_made = sim.request_counts["POST /services/data/v{version}/jobs/ingest"]
    assert requests_made == 6
