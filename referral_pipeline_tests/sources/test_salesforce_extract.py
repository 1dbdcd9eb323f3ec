"""Salesforce extraction against the simulator over real HTTP: first and repeated runs, changes,
equal stamps across REST pages, deleted rows, the Bulk 2.0 path, faults, throttles, token refresh."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from simple_salesforce.exceptions import SalesforceExpiredSession

from referral_pipeline.clients.salesforce import SalesforceClient, SalesforceQuotaExhausted
from referral_pipeline.extract.base import extract
from referral_pipeline.extract.salesforce import parse_sf_datetime
from referral_pipeline.http.client import TransientError
from referral_pipeline.warehouse.landing import Cursor, read_cursor

from .salesforce_support import (BULK_CREATE, BULK_RESULTS, QUERY, QUERY_MORE, TOKEN, T0, at, client_for, contact,
                                 extract_all, extractor, new_warehouse, post, raw_rows, requests_made, salesforce_sim, sid,
                                 small_org, snapshot, stage_all, upsert, write_org)

OVERLAP = timedelta(minutes=5)


def first_keys() -> list[str]:
    return ["account", "contact", "order", "order_item", "referral_reward"]


def counts(result) -> tuple:
    c = result.counts
    return c.fetched, c.new, c.updated, c.unchanged


def test_first_run_lands_everything_and_a_second_run_reads_only_the_overlap(tmp_path):
    org = small_org(n=12, step=17)
    with salesforce_sim(write_org(tmp_path, org)) as sim:
        client = client_for(sim)
        con = new_warehouse()
        first = extract_all(con, client, "run-1", overlap=OVERLAP)
        queries_after_first = requests_made(sim, QUERY)
        second = extract_all(con, client, "run-2", overlap=OVERLAP)
        queries_after_second = requests_made(sim, QUERY)
    assert {e: counts(r) for e, r in first.items()} == {
        "account": (12, 12, 0, 0), "contact": (12, 12, 0, 0), "order": (12, 12, 0, 0),
        "order_item": (24, 24, 0, 0), "referral_reward": (3, 3, 0, 0)}
    # one COUNT() and one page per entity, nothing more
    assert queries_after_first == 2 * 5 and requests_made(sim, QUERY_MORE) == 0
    assert requests_made(sim, TOKEN) == 1
    # the raw payload is the record as the REST API returns it (selected fields, no attributes)
    (pk, stamp, deleted, payload), *_ = raw_rows(con, "contact")
    c1 = org["Contact"][0]
    assert (pk, stamp, deleted) == (c1["Id"], T0 + timedelta(minutes=18), False)
    assert payload == {"Id": c1["Id"], "AccountId": sid("001", 1), "Email": "Person1@Example.com", "FirstName": "Pat1",
                       "LastName": "Lee1", "Phone": None, "HasOptedOutOfEmail": False,
                       "MailingCountry": "United States", "Referral_Code__c": None, "Loyalty_Points_Balance__c": None,
                       "Loyalty_VIP_Tier__c": None, "Referral_Customer_Key__c": None, "CreatedDate": at(-42),
                       "SystemModstamp": at(18), "IsDeleted": False}
    assert first["contact"].cursor_after == Cursor(T0 + timedelta(minutes=12 * 17 + 1), sid("003", 12))
    assert read_cursor(con, "sf", "order_item") == Cursor(T0 + timedelta(minutes=12 * 17 + 3), sid("802", 25))
    # the second run re-reads only the last 5 minutes of each entity and changes nothing
    assert {e: counts(r) for e, r in second.items()} == {
        "account": (1, 0, 0, 1), "contact": (1, 0, 0, 1), "order": (1, 0, 0, 1), "order_item": (2, 0, 0, 2),
        "referral_reward": (1, 0, 0, 1)}
    assert queries_after_second - queries_after_first == 2 * 5
    assert {e: r.cursor_after for e, r in second.items()} == {e: r.cursor_after for e, r in first.items()}


def test_a_change_is_picked_up_and_nothing_else_beyond_the_overlap(tmp_path):
    with salesforce_sim(write_org(tmp_path, small_org(n=12, step=17))) as sim:
        client = client_for(sim)
        con = new_warehouse()
        extract_all(con, client, "run-1", overlap=OVERLAP)
        stage_all(con, "run-1")
        (changed,) = upsert(sim, "Contact", [{"Id": sid("003", 5), "Email": "new.address@example.com"}])
        result = extract(con, extractor(client, "contact"), "run-2", overlap=OVERLAP)
        staged = stage_all(con, "run-2")
    assert counts(result) == (2, 0, 1, 1)  # contact 12 (overlap) and contact 5 (changed)
    new_stamp = parse_sf_datetime(changed["SystemModstamp"])
    assert result.cursor_after == Cursor(new_stamp, sid("003", 5))
    assert staged["sf.customers"].processed == 1 and staged["sf.customers"].staged == 1
    assert con.execute("SELECT email_normalized, updated_at FROM staging.customers WHERE source_customer_id = ?",
                       [sid("003", 5)]).fetchall() == [("new.address@example.com", new_stamp)]


def _equal_stamp_org() -> dict[str, list[dict]]:
    """450 contacts; 200 of them (150..349) share one SystemModstamp, straddling the 200-row pages."""
    def minutes(i: int) -> float:
        return i if i < 150 else 500 if i < 350 else 600 + i
    return {"Contact": [contact(i, minutes(i)) for i in range(450)]}


def test_equal_stamps_across_a_page_boundary_are_neither_lost_nor_duplicated(tmp_path):
    org = _equal_stamp_org()
    keyset = sorted((r["SystemModstamp"], r["Id"]) for r in org["Contact"])
    with salesforce_sim(write_org(tmp_path, org)) as sim:
        client = client_for(sim)
        # one run: three pages of at most 200 through nextRecordsUrl
        con = new_warehouse()
        whole = extract(con, extractor(client, "contact", page_size=200), "run-1", overlap=OVERLAP)
        assert (counts(whole), whole.pages) == ((450, 450, 0, 0), 3)
        assert requests_made(sim, QUERY) == 2 and requests_made(sim, QUERY_MORE) == 2
        # a run that dies after its first committed page, resumed with the keyset cursor (no overlap)
        con = new_warehouse()
        with pytest.raises(RuntimeError):
            extract(con, CrashAfterFirstPage(extractor(client, "contact", page_size=200)), "run-1",
                    overlap=timedelta(0), flush_rows=200)
        landed = {pk for pk, *_ in raw_rows(con, "contact")}
        stamp_200, id_200 = keyset[199]
        assert landed == {i for _, i in keyset[:200]}
        assert read_cursor(con, "sf", "contact") == Cursor(parse_sf_datetime(stamp_200), id_200)
        assert stamp_200 == at(500) and keyset[200][0] == at(500)  # the boundary is inside the equal stamps
        resumed = extract(con, extractor(client, "contact", page_size=200), "run-2", overlap=timedelta(0))
    assert counts(resumed) == (250, 250, 0, 0)
    assert sorted(pk for pk, *_ in raw_rows(con, "contact")) == sorted(i for _, i in keyset)


class CrashAfterFirstPage:
    """An extractor whose connection dies after the first page."""

    def __init__(self, inner):
        self.inner = inner
        self.source, self.entity = inner.source, inner.entity

    def pages(self, since, window_end=None):
        for n, page in enumerate(self.inner.pages(since, window_end)):
            if n == 1:
                raise RuntimeError("connection lost")
            yield page

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_backfill_window_rereads_only_that_window_and_keeps_the_cursor(tmp_path):
    with salesforce_sim(write_org(tmp_path, small_org(n=12, step=17))) as sim:
        client = client_for(sim)
        con = new_warehouse()
        first = extract(con, extractor(client, "contact"), "run-1")
        window = (T0 + timedelta(minutes=36), T0 + timedelta(minutes=86))  # contacts 3, 4, 5 at 52, 69, 86
        backfill = extract(con, extractor(client, "contact"), "run-2", window=window)
    assert counts(backfill) == (2, 0, 0, 2)  # [start, end): contact 5 at exactly `end` is not included
    assert backfill.cursor_after == first.cursor_after == read_cursor(con, "sf", "contact")


def test_deleted_rows_arrive_through_query_all_and_are_marked(tmp_path):
    org = small_org(n=6)
    org["Contact"].append(contact(7, 200, IsDeleted=True))  # already in the recycle bin
    with salesforce_sim(write_org(tmp_path, org)) as sim:
        client = client_for(sim)
        con = new_warehouse()
        extract_all(con, client, "run-1", overlap=OVERLAP)
        upsert(sim, "Order", [{"Id": sid("801", 2), "IsDeleted": True}])
        upsert(sim, "OrderItem", [{"Id": sid("802", 5), "IsDeleted": True}])
        second = extract_all(con, client, "run-2", overlap=OVERLAP)
    deleted = {e: sorted(pk for pk, _, d, _ in raw_rows(con, e) if d) for e in ("contact", "order", "order_item")}
    assert deleted == {"contact": [sid("003", 7)], "order": [sid("801", 2)], "order_item": [sid("802", 5)]}
    assert counts(second["order"])[2] == 1 and counts(second["order_item"])[2] == 1
    assert raw_rows(con, "contact")[-1][3]["IsDeleted"] is True


def test_the_bulk_path_lands_exactly_what_the_rest_path_lands(tmp_path):
    org = small_org(n=30, step=7)
    org["Contact"] += [contact(31, 400, FirstName='Zoë "Z", Jr.', LastName="O'Neil\nSecond line", Phone="+1 555 0100"),
                       contact(32, 401, IsDeleted=True, HasOptedOutOfEmail=True, Email=None),
                       contact(33, 402, LastName="Lee\ud800")]  # a planted lone surrogate: U+FFFD on both paths
    org["Order"][0]["TotalAmount"] = "12,34"   # planted junk stays text on both paths
    org["Order"][1]["Tax_Amount__c"] = "NaN"
    with salesforce_sim(write_org(tmp_path, org)) as sim:
        client = client_for(sim)
        rest = new_warehouse()
        extract_all(rest, client, "run-1", overlap=OVERLAP)
        assert requests_made(sim, BULK_CREATE) == 0
        # the same rows read again by Bulk into the REST warehouse: identical payload text, nothing changes
        swapped = {e: extract(rest, extractor(client, e, bulk_threshold=1), "run-2", full_refresh=True) for e in first_keys()}
        bulk = new_warehouse()
        first = extract_all(bulk, client, "run-1", overlap=OVERLAP, bulk_threshold=1, bulk_page_size=10)
        again = extract_all(bulk, client, "run-2", overlap=OVERLAP, bulk_threshold=1, bulk_page_size=10)
        jobs, result_pages = requests_made(sim, BULK_CREATE), requests_made(sim, BULK_RESULTS)
    assert snapshot(bulk) == snapshot(rest)
    assert all(r.counts.unchanged == r.counts.fetched > 0 for r in swapped.values())
    assert counts(first["contact"]) == (33, 33, 0, 0) and counts(first["order_item"]) == (60, 60, 0, 0)
    assert all(r.counts.new == r.counts.updated == 0 for r in again.values())
    assert jobs == 5 + 2 * 5
    # results pages of at most 10 rows: 30+33+30+60+3 rows in the first run, 1+3+1+2+1 in the second
    # (the swap read everything in one page per entity)
    assert result_pages == 5 + (3 + 4 + 3 + 6 + 1) + 5
    assert bulk.execute("SELECT payload::JSON->>'FirstName', payload::JSON->>'LastName' FROM raw.sf__contact "
                        "WHERE pk = ?", [sid("003", 31)]).fetchone() == ('Zoë "Z", Jr.', "O'Neil\nSecond line")
    assert bulk.execute("SELECT payload::JSON->>'LastName' FROM raw.sf__contact WHERE pk = ?",
                        [sid("003", 33)]).fetchone() == ("Lee\ufffd",)


@pytest.mark.parametrize("path", ["rest", "bulk"])
def test_twenty_percent_faults_give_the_same_warehouse_as_a_clean_run(tmp_path, path):
    org = small_org(n=40, step=3)
    org["Contact"] += [contact(100 + i, 300) for i in range(420)]  # several REST pages
    options = {"page_size": 200} | ({"bulk_threshold": 1, "bulk_page_size": 150} if path == "bulk" else {})
    root = write_org(tmp_path, org)
    with salesforce_sim(root) as sim:
        clean = new_warehouse()
        extract_all(clean, client_for(sim), "run-1", overlap=OVERLAP, **options)
        stage_all(clean, "run-1")
    faults = {"p_429": 0.07, "p_500": 0.03, "p_502": 0.03, "p_503": 0.03, "p_drop": 0.04, "seed": 11}
    with salesforce_sim(root, faults=faults) as sim:
        client = client_for(sim, max_attempts=8)
        faulty = new_warehouse()
        extract_all(faulty, client, "run-1", overlap=OVERLAP, **options)
        stage_all(faulty, "run-1")
        injected = dict(sim.faults.injected)
    assert snapshot(faulty) == snapshot(clean)
    assert injected["429"] > 0 and injected["drop"] > 0 and injected["500"] + injected["502"] + injected["503"] > 0
    stats = client.stats
    assert stats.retries == sum(injected.values())
    assert stats.by_status[403] == injected["429"]  # the concurrency throttle, retried


def test_http_429_throttles_wait_for_retry_after(tmp_path):
    waits: list[float] = []
    with salesforce_sim(write_org(tmp_path, small_org(n=3)), options={"throttle_style": "http_429"},
                        faults={"p_429": 0.5, "seed": 3, "retry_after_seconds": 2}) as sim:
        client = client_for(sim, sleep=waits.append, max_attempts=10)
        con = new_warehouse()
        results = extract_all(con, client, "run-1", overlap=OVERLAP)
    assert [counts(r)[0] for r in results.values()] == [3, 3, 3, 6, 3]
    assert client.stats.by_status[429] == sim.faults.injected["429"] > 0
    assert waits.count(2.0) == client.stats.by_status[429]


def test_the_daily_allowance_is_not_retried(tmp_path):
    with salesforce_sim(write_org(tmp_path, small_org(n=3)), rate_limit={"daily_api_requests": 3}) as sim:
        client = client_for(sim)
        con = new_warehouse()
        extract(con, extractor(client, "account"), "run-1")   # COUNT() + one page
        with pytest.raises(SalesforceQuotaExhausted, match="daily API request allowance"):
            extract(con, extractor(client, "contact"), "run-1")  # COUNT() passes, the page is refused
        refused = [r for r in sim.request_log if r["status"] == 403]
    assert len(refused) == 1 and client.stats.retries == 0
    assert read_cursor(con, "sf", "contact") == Cursor()


def test_an_expired_session_is_refreshed_once(tmp_path):
    with salesforce_sim(write_org(tmp_path, small_org(n=3))) as sim:
        client = client_for(sim)
        token = client.api.auth.headers()["Authorization"].split(" ", 1)[1]
        requests.post(f"{sim.base_url}/services/oauth2/revoke", data={"token": token}, timeout=5).raise_for_status()
        result = extract(new_warehouse(), extractor(client, "contact"), "run-1")
        assert counts(result) == (3, 3, 0, 0)
        assert client.stats.auth_refreshes == 1 and requests_made(sim, TOKEN) == 2
        # a static token that is not valid: one refresh (same token), then the error surfaces
        bad = SalesforceClient(sim.base_url, access_token="not-a-session", backoff_base=0.01)
        with pytest.raises(SalesforceExpiredSession):
            bad.count("SELECT COUNT() FROM Contact")
    assert bad.stats.by_status[401] == 2 and bad.stats.auth_refreshes == 1


def test_a_connection_that_keeps_dropping_is_retried_then_reported(tmp_path):
    with salesforce_sim(write_org(tmp_path, small_org(n=3))) as sim:
        client = client_for(sim, max_attempts=3)
        post(sim, "/_sandbox/faults", {"p_drop": 1.0})
        with pytest.raises(TransientError, match="ConnectionError"):
            client.count("SELECT COUNT() FROM Contact")
        dropped = [r for r in sim.request_log if r["fault"] == "drop"]
    assert len(dropped) == 3 and client.stats.retries == 2
