"""commercetools extraction over real HTTP against the simulator: first and repeated runs, the
overlap, source changes, keyset paging through >10,000 orders that share stamps, injected faults,
token expiry, backfill windows and full refresh."""
from __future__ import annotations

from datetime import timedelta

import pytest

from referral_pipeline.extract.commercetools import ENTITIES
from referral_pipeline.sandbox.core.config import FaultSpec
from referral_pipeline.warehouse.landing import Cursor, read_cursor

from .commercetools_support import (SOURCE, T0, UrlLog, api_gets, at, cart_discount, client_for, customer,
                                    discount_code, extract_all, extract_entity, new_db, order, post_records,
                                    raw_snapshot, return_info, rows, serve, stage_all, uid, write_fixtures)

N_CUSTOMERS, N_ORDERS = 12, 40


def small_world(root):
    return write_fixtures(root, customers=[customer(i) for i in range(N_CUSTOMERS)],
                          orders=[order(i, codes=[uid("d", 1)] if i % 5 == 0 else []) for i in range(N_ORDERS)],
                          discount_codes=[discount_code(1, "FRIEND-20", [1]), discount_code(2, "SPRING", [2])],
                          cart_discounts=[cart_discount(1), cart_discount(2, currency="USD")])


@pytest.fixture
def sim(tmp_path):
    with serve(small_world(tmp_path)) as running:
        yield running


def test_first_run_lands_everything_second_run_only_rereads_the_overlap(sim):
    con = new_db()
    first = extract_all(con, client_for(sim))
    expected = {"customers": N_CUSTOMERS, "orders": N_ORDERS, "discount_codes": 2, "cart_discounts": 2}
    for entity, n in expected.items():
        c = first[entity].counts
        assert (c.fetched, c.new, c.updated, c.quarantined) == (n, n, 0, 0), entity
    assert [r[0] for r in rows(con, "SELECT pk FROM raw.ct__orders ORDER BY pk")] == [uid("a", i) for i in range(N_ORDERS)]
    assert read_cursor(con, SOURCE, "orders").value == T0 + timedelta(minutes=N_ORDERS - 1)
    assert read_cursor(con, SOURCE, "orders").id == uid("a", N_ORDERS - 1)
    # the coupon code comes inline, cut down to its immutable id and code
    payload = rows(con, "SELECT payload FROM raw.ct__orders WHERE pk = ?", [uid("a", 5)])[0][0]
    assert '"obj":{"id":"d0000000-0000-4000-8000-000000000001","code":"FRIEND-20"}' in payload
    stage_all(con)
    before = {e: raw_snapshot(con, e) for e in ENTITIES}
    gets_before = {e: api_gets(sim, spec.resource) for e, spec in ENTITIES.items()}

    log = UrlLog()
    second = extract_all(con, client_for(sim, session=log.session), run_id="r2")
    # a 5-minute overlap before the newest stamp: stamps t-5 .. t (one record per minute)
    overlap = {"customers": 6, "orders": 6, "discount_codes": 2, "cart_discounts": 2}
    for entity, n in overlap.items():
        c = second[entity].counts
        assert (c.fetched, c.new, c.updated, c.unchanged) == (n, 0, 0, n), entity
        assert api_gets(sim, ENTITIES[entity].resource) - gets_before[entity] == 1, entity
        assert raw_snapshot(con, entity) == before[entity], entity
    (query,) = log.queries("orders")
    assert query["where"] == ['lastModifiedAt >= "2025-03-01T00:34:00.000Z"']
    assert query["sort"] == ["lastModifiedAt asc", "id asc"]
    assert (query["limit"], query["withTotal"], query["expand"]) == (["500"], ["false"], ["discountCodes[*].discountCode"])
    assert "offset" not in query
    assert all(r.processed == 0 for r in stage_all(con, "r2").values())


def test_source_changes_are_picked_up(sim):
    con = new_db()
    extract_all(con, client_for(sim))
    stage_all(con)
    new = post_records(sim, "orders", [{k: v for k, v in order(100, customerId=uid("c", 1)).items() if k != "id"}])[0]
    post_records(sim, "orders", [{"id": uid("a", 3), "orderState": "Complete", "shipmentState": "Delivered"}])
    post_records(sim, "orders", [{"id": uid("a", 4), "returnInfo": [return_info([("ret-4", "l4-1", 2, "Refunded")])]}])

    result = extract_entity(con, client_for(sim), "orders", run_id="r2")
    c = result.counts
    assert (c.fetched, c.new, c.updated, c.unchanged) == (6 + 3, 1, 2, 6)
    assert read_cursor(con, SOURCE, "orders").value == max(
        r[0] for r in rows(con, "SELECT stamp FROM raw.ct__orders"))
    staged = stage_all(con, "r2")
    assert staged["ct.orders"].processed == 3
    status = dict(rows(con, "SELECT source_order_id, status FROM staging.orders WHERE source_order_id IN (?, ?, ?)",
                       [new["id"], uid("a", 3), uid("a", 4)]))
    assert status == {new["id"]: "paid", uid("a", 3): "completed", uid("a", 4): "refunded"}
    assert rows(con, "SELECT refund_key, amount, kind FROM staging.refunds") == [("ct:ret-4", 40, "refund")]
    assert rows(con, "SELECT refunded_amount, net_amount FROM staging.orders WHERE source_order_id = ?",
                [uid("a", 4)]) == [(40, 0)]
    assert rows(con, "SELECT count(*) FROM staging.orders")[0][0] == N_ORDERS + 1


def test_keyset_paging_through_more_than_10000_orders_sharing_stamps(tmp_path):
    n, stamps = 10_600, 4      # 2,650 orders share each lastModifiedAt value; ids in shuffled order
    orders = [{"id": uid("a", (i * 7919) % n), "version": 1, "createdAt": at(0), "lastModifiedAt": at(i % stamps),
               "orderState": "Open", "totalPrice": {"currencyCode": "USD", "centAmount": 100, "fractionDigits": 2}}
              for i in range(n)]
    in_order = sorted(orders, key=lambda o: (o["lastModifiedAt"], o["id"]))
    with serve(write_fixtures(tmp_path, orders=orders)) as sim:
        con, log = new_db(), UrlLog()
        result = extract_entity(con, client_for(sim, session=log.session), "orders")
        assert (result.counts.fetched, result.counts.new, result.pages) == (n, n, 22)
        assert api_gets(sim, "orders") == 22                       # ceil(10,600 / 500), no empty last page
        assert rows(con, "SELECT count(*), count(DISTINCT pk) FROM raw.ct__orders")[0] == (n, n)
        queries = log.queries("orders")
        assert all("offset" not in q and q["limit"] == ["500"] and q["withTotal"] == ["false"] for q in queries)
        # page k+1 starts right after the last record of page k, inside a run of equal stamps too
        expected = [None] + [keyset(in_order[k * 500 - 1]) for k in range(1, 22)]
        assert [q.get("where", [None])[0] for q in queries] == expected
        assert read_cursor(con, SOURCE, "orders") == Cursor(T0 + timedelta(minutes=stamps - 1), in_order[-1]["id"])
        # without an overlap the stored (stamp, id) cursor is the keyset start: nothing is re-read
        again = extract_entity(con, client_for(sim, session=log.session), "orders", run_id="r2", overlap=timedelta(0))
        assert (again.counts.fetched, again.pages) == (0, 0)
        assert log.queries("orders")[-1]["where"] == [keyset(in_order[-1])]


def keyset(rec: dict) -> str:
    s, i = rec["lastModifiedAt"], rec["id"]
    return f'lastModifiedAt > "{s}" or (lastModifiedAt = "{s}" and id > "{i}")'


def test_injected_faults_give_the_same_duckdb_content_as_a_clean_run(tmp_path):
    world = write_fixtures(tmp_path, customers=[customer(i) for i in range(150)],
                           orders=[order(i) for i in range(600)],
                           discount_codes=[discount_code(i, f"CODE{i}", [1]) for i in range(1, 120)],
                           cart_discounts=[cart_discount(1)])
    faults = FaultSpec(p_429=0.04, p_500=0.04, p_502=0.04, p_503=0.04, p_drop=0.04, retry_after_seconds=0, seed=11)

    def run(fault_spec):
        with serve(world, fault_spec) as sim:
            con, client = new_db(), client_for(sim)
            results = extract_all(con, client, page_size=50)
            stage_all(con)
            return con, results, dict(sim.faults.injected), client

    clean, _, _, _ = run(None)
    faulty, results, injected, client = run(faults)
    assert all(injected[k] > 0 for k in ("429", "500", "502", "503", "drop")), injected
    assert client.api.stats.retries + client.auth_api.stats.retries == sum(injected.values())
    assert sum(r.counts.fetched for r in results.values()) == 150 + 600 + 119 + 1
    for table in [f"raw.ct__{e}" for e in ENTITIES]:
        query = f"SELECT pk, payload FROM {table} ORDER BY pk"
        assert rows(faulty, query) == rows(clean, query), table
    for table, key in (("staging.customers", "customer_record_key"), ("staging.orders", "order_key"),
                       ("staging.order_items", "order_item_key"), ("staging.coupons", "coupon_key")):
        query = f"SELECT * EXCLUDE (load_seq) FROM {table} ORDER BY {key}"
        assert rows(faulty, query) == rows(clean, query), table
    assert rows(faulty, "SELECT cursor_value, cursor_id FROM ops.sync_cursors ORDER BY entity") == \
        rows(clean, "SELECT cursor_value, cursor_id FROM ops.sync_cursors ORDER BY entity")


def test_expired_token_is_refreshed_once(sim):
    con, client = new_db(), client_for(sim)
    extract_entity(con, client, "customers")
    real_now = sim.now
    sim.now = lambda: real_now() + timedelta(days=3)          # past the 48 h token lifetime
    try:
        result = extract_entity(con, client, "orders")
    finally:
        sim.now = real_now
    assert result.counts.fetched == N_ORDERS
    assert result.requests["auth_refreshes"] == 1 and result.requests["token_requests"] == 1
    assert sim.request_counts["POST /oauth/token"] == 2
    assert client.api.stats.by_status[401] == 1


def test_backfill_window_and_full_refresh(sim):
    con = new_db()
    extract_entity(con, client_for(sim), "orders")
    cursor = read_cursor(con, SOURCE, "orders")
    window = (T0 + timedelta(minutes=10), T0 + timedelta(minutes=20))
    result = extract_entity(con, client_for(sim), "orders", run_id="r2", window=window)
    assert (result.counts.fetched, result.counts.unchanged) == (10, 10)   # stamps 10..19, end exclusive
    assert read_cursor(con, SOURCE, "orders") == cursor
    full = extract_entity(con, client_for(sim), "orders", run_id="r3", full_refresh=True)
    assert (full.counts.fetched, full.counts.unchanged, full.counts.new) == (N_ORDERS, N_ORDERS, 0)
    assert read_cursor(con, SOURCE, "orders") == cursor
