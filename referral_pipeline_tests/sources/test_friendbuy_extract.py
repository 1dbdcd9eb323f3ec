"""Friendbuy extraction over real HTTP against the MAPI simulator: first and repeated runs, new
rows, window edges and paging, backfill and full refresh, token refresh, injected faults."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import requests

from referral_pipeline.extract.base import extract
from referral_pipeline.extract.friendbuy import REPORTS, FriendbuyExtractor, parse_created_on, row_key
from referral_pipeline.sandbox.core.config import FaultSpec
from referral_pipeline.warehouse.landing import Cursor, read_cursor

from .friendbuy_support import (COLLECTION, OVERLAP, T0, at, canonical, clean_world, click, client_for,
                                extract_all, friendbuy_sim, new_warehouse, raw_payloads, request_count, share,
                                stage_all, widget_view, write_world)


def max_stamp(rows):
    return max(parse_created_on(r["createdOn"]) for r in rows)


def test_first_run_lands_everything_and_second_run_changes_nothing(tmp_path):
    world = clean_world(n=12)
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        con, client = new_warehouse(), client_for(sim)
        first = extract_all(con, client, "r1", page_size=5)
        for entity, rows in world.items():
            res = first[entity]
            assert (res.counts.fetched, res.counts.new, res.counts.updated, res.counts.quarantined) == (12, 12, 0, 0)
            assert res.pages == 3  # 5 + 5 + 2, the last page has no token
            assert request_count(sim, f"GET /v1/analytics/{COLLECTION[entity]}") == 3
            assert canonical(raw_payloads(con, entity)) == canonical(rows)
            cursor = read_cursor(con, "fb", entity)
            newest = max(rows, key=lambda r: r["createdOn"])
            assert cursor == Cursor(max_stamp(rows), row_key(newest))
        assert request_count(sim, "POST /v1/authorization") == 1  # one token for the whole run
        staged = stage_all(con, "r1")
        assert {e: (r.staged, r.quarantined) for e, r in staged.items()} == {e: (12, 0) for e in world}
        seq_before = con.execute("SELECT max(load_seq) FROM raw.fb__shares").fetchone()[0]

        second = extract_all(con, client, "r2", page_size=5)
        for entity, rows in world.items():
            res = second[entity]
            # only the overlap hour before the cursor is read again, and nothing changes
            in_overlap = [r for r in rows if parse_created_on(r["createdOn"]) >= max_stamp(rows) - OVERLAP]
            assert (res.counts.fetched, res.counts.new, res.counts.updated) == (len(in_overlap), 0, 0)
            assert res.cursor_after == res.cursor_before
        assert con.execute("SELECT max(load_seq) FROM raw.fb__shares").fetchone()[0] == seq_before
        assert all(r.processed == 0 for r in stage_all(con, "r2").values())
        assert con.execute("SELECT count(*) FROM staging.referral_events").fetchone()[0] == 7 * 12


def test_rows_added_at_the_source_are_picked_up(tmp_path):
    world = clean_world(n=3)
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        con, client = new_warehouse(), client_for(sim)
        extract_all(con, client, "r1")
        stage_all(con, "r1")
        added = {"collection": "shares", "records": [share(7, 0, referralCode="late-code"),
                                                     share(8, 0, referralCode="later-code")]}
        stored = requests.post(f"{sim.base_url}/_sandbox/records", json=added).json()["records"]
        res = extract(con, FriendbuyExtractor(client, "fb", "shares"), "r2", overlap=OVERLAP)
        # the three old rows are re-read in the overlap hour before the cursor, unchanged
        assert (res.counts.fetched, res.counts.new, res.counts.unchanged) == (5, 2, 3)
        codes = sorted(p["referralCode"] for p in raw_payloads(con, "shares"))
        assert codes == sorted(["code0", "code1", "code2", "late-code", "later-code"])
        served = [{k: v for k, v in r.items() if k != "id"} for r in stored]
        newest = max(served, key=lambda r: (r["createdOn"], row_key(r)))
        assert read_cursor(con, "fb", "shares") == Cursor(parse_created_on(newest["createdOn"]), row_key(newest))
        staged = stage_all(con, "r2")["shares"]
        assert (staged.processed, staged.staged) == (2, 2)
        again = extract(con, FriendbuyExtractor(client, "fb", "shares"), "r3", overlap=OVERLAP)
        # the cursor is now at the new rows: the old ones are far outside the overlap
        assert (again.counts.fetched, again.counts.new, again.counts.updated) == (2, 0, 0)


def test_equal_created_on_across_page_boundaries_and_exactly_full_last_page(tmp_path):
    same = at(30)
    world = {"clicks": [click(i, 0, createdOn=same) for i in range(23)],
             "widget_views": [widget_view(i, i) for i in range(20)]}
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        con, client = new_warehouse(), client_for(sim)
        clicks = extract(con, FriendbuyExtractor(client, "fb", "clicks", page_size=10), "r1")
        assert (clicks.pages, clicks.counts.fetched, clicks.counts.new) == (3, 23, 23)
        assert con.execute("SELECT count(DISTINCT pk) FROM raw.fb__clicks").fetchone()[0] == 23
        assert canonical(raw_payloads(con, "clicks")) == canonical(world["clicks"])
        # 20 rows in pages of 10: the second page is full and has no token -> no third request
        views = extract(con, FriendbuyExtractor(client, "fb", "widget_views", page_size=10), "r1")
        assert (views.pages, views.counts.new) == (2, 20)
        assert request_count(sim, "GET /v1/analytics/widget-views") == 2
        assert request_count(sim, "GET /v1/analytics/clicks") == 3
        # the cursor sits on the shared instant; re-reading it (fromDate is inclusive) adds nothing
        assert read_cursor(con, "fb", "clicks").value == parse_created_on(same)
        again = extract(con, FriendbuyExtractor(client, "fb", "clicks", page_size=10), "r2", overlap=timedelta(0))
        assert (again.counts.fetched, again.counts.new, again.counts.updated) == (23, 0, 0)


def test_window_edges_backfill_and_full_refresh(tmp_path):
    world = {"shares": [share(i, i * 10) for i in range(10)]}  # T0, T0+10min, ... T0+90min
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        con, client = new_warehouse(), client_for(sim)
        extractor = FriendbuyExtractor(client, "fb", "shares", page_size=4)
        # a backfill window [T0+20min, T0+50min): fromDate inclusive, toDate exclusive; cursor untouched
        window = (T0 + timedelta(minutes=20), T0 + timedelta(minutes=50))
        res = extract(con, extractor, "b1", window=window)
        assert (res.counts.fetched, res.counts.new) == (3, 3)
        assert sorted(p["createdOn"] for p in raw_payloads(con, "shares")) == [at(20), at(30), at(40)]
        assert read_cursor(con, "fb", "shares") == Cursor()
        # the incremental run fills in the rest
        res = extract(con, extractor, "r1", overlap=OVERLAP)
        assert (res.counts.fetched, res.counts.new, res.counts.unchanged) == (10, 7, 3)
        assert read_cursor(con, "fb", "shares").value == T0 + timedelta(minutes=90)
        # a full refresh re-reads everything and changes nothing
        res = extract(con, extractor, "r2", overlap=OVERLAP, full_refresh=True)
        assert (res.counts.fetched, res.counts.new, res.counts.updated) == (10, 0, 0)
        assert read_cursor(con, "fb", "shares").value == T0 + timedelta(minutes=90)


def test_expired_token_is_refreshed_once_after_401(tmp_path):
    world = {"shares": [share(i, i) for i in range(6)]}
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        con, client = new_warehouse(), client_for(sim)
        extract(con, FriendbuyExtractor(client, "fb", "shares", page_size=4), "r1", overlap=OVERLAP)
        # 21 minutes later on the simulator's clock the cached token is refused
        sim.now = lambda: datetime.now(timezone.utc) + timedelta(minutes=21)
        res = extract(con, FriendbuyExtractor(client, "fb", "shares", page_size=4), "r2", full_refresh=True)
        assert (res.counts.fetched, res.counts.new, res.counts.updated) == (6, 0, 0)
        assert client.stats.auth_refreshes == 1
        assert client.stats.by_status[401] == 1
        assert request_count(sim, "POST /v1/authorization") == 2


def test_token_is_renewed_before_it_expires(tmp_path):
    with friendbuy_sim(write_world(tmp_path, {"shares": [share(0, 0)]}), options={"token_ttl_seconds": 1}) as sim:
        client = client_for(sim)
        pages = lambda: list(client.iter_analytics("shares", at(-1), at(1)))  # noqa: E731
        assert len(pages()[0].results) == 1
        time.sleep(1.05)
        assert len(pages()[0].results) == 1
        assert request_count(sim, "POST /v1/authorization") == 2
        assert client.stats.by_status[401] == 0 and client.stats.auth_refreshes == 0


def test_injected_faults_give_the_same_warehouse_as_a_clean_run(tmp_path):
    root = write_world(tmp_path, clean_world(n=15))
    faults = FaultSpec(p_429=0.05, p_500=0.05, p_503=0.05, p_drop=0.05, seed=12)
    results = []
    for spec in (FaultSpec(), faults):
        with friendbuy_sim(root, faults=spec) as sim:
            con, client = new_warehouse(), client_for(sim)
            extract_all(con, client, "r1", page_size=4)
            stage_all(con, "r1")
            tables = {e: con.execute(f"SELECT pk, stamp, payload FROM raw.fb__{e} ORDER BY pk").fetchall() for e in REPORTS}
            staged = con.execute("SELECT * EXCLUDE (load_seq) FROM staging.referral_events ORDER BY event_key").fetchall()
            cursors = con.execute("SELECT source, entity, cursor_value, cursor_id FROM ops.sync_cursors ORDER BY 2").fetchall()
            results.append((tables, staged, cursors))
            injected = {kind: n for kind, n in sim.faults.injected.items() if n}
            assert client.stats.retries == sum(injected.values())  # every fault cost exactly one retry
    assert set(injected) == {"429", "500", "503", "drop"}
    clean, faulty = results
    assert faulty == clean
    assert len(clean[1]) == 7 * 15
    assert all(len(rows) == 15 for rows in clean[0].values())
    assert len(clean[2]) == 7


def test_refused_page_size_falls_back_to_the_server_default(tmp_path):
    world = {"shares": [share(i, i * 0.1) for i in range(450)], "clicks": [click(i, i) for i in range(3)]}
    with friendbuy_sim(write_world(tmp_path, world), options={"analytics_max_page_size": 200}) as sim:
        con, client = new_warehouse(), client_for(sim)
        shares = extract(con, FriendbuyExtractor(client, "fb", "shares", page_size=1000), "r1")
        assert (shares.pages, shares.counts.new) == (3, 450)  # 200 + 200 + 50 at the default size
        assert request_count(sim, "GET /v1/analytics/shares") == 4  # one 422, then three pages
        extract(con, FriendbuyExtractor(client, "fb", "clicks", page_size=1000), "r1")
        assert request_count(sim, "GET /v1/analytics/clicks") == 1  # remembered: no second 422
        assert client.stats.by_status[422] == 1
