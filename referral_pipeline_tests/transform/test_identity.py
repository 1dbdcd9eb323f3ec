"""Identity stage (docs/identity.md): keys, email index, golden records, analytics.orders/customers,
Friendbuy parties, incremental runs and idempotency. Staging rows are written by hand."""
from __future__ import annotations

from decimal import Decimal

import pytest

from referral_pipeline.transform.identity.runner import market_hints
from referral_pipeline_tests.transform.identity_support import (AS_OF, customer, customer_row, cus, delete_staged,
                                                                event, key_of, new_db, order, programs, rows, run,
                                                                snapshot, ts)

ANN = "ann.lee@example.com"


@pytest.fixture
def con():
    c = new_db()
    yield c
    c.close()


def map_rows(con):
    return rows(con, "SELECT identity_key, customer_key, email_normalized_at_assignment, identity_type, source, "
                     "source_id, assigned_by, run_id FROM identity.customer_map ORDER BY identity_key")


def three_sources(con):
    customer(con, "sf:003A", " Ann.Lee@Example.com ", first_name="Ann", last_name="Lee", sf_account_id="001A",
             marketing_consent=False, country="United Kingdom", phone="+1 555 0100",
             created_at="2025-02-01T00:00:00", updated_at="2025-03-01T00:00:00")
    customer(con, "ct:c1", "ANN.LEE@EXAMPLE.COM", first_name="Annie", last_name="L", marketing_consent=True,
             store="us", country="US", created_at="2025-01-15T00:00:00", updated_at="2026-05-01T00:00:00")
    customer(con, "bc:7", "ann.lee@example.com ", first_name="A", last_name="Lee", marketing_consent=True,
             created_at="2025-04-01T00:00:00", updated_at="2026-05-02T00:00:00")
    order(con, "sf:801A", "sf:003A", gross="120", placed_at="2026-03-01T10:00:00")
    order(con, "ct:o1", "ct:c1", email=ANN, gross="80", placed_at="2026-03-05T10:00:00")
    order(con, "bc:100", "bc:7", email="Ann.Lee@example.com", gross="60", discount="10", placed_at="2026-03-09T10:00:00")


# --- one person in three sources ------------------------------------------------------------------

def test_same_person_in_three_sources_is_one_key_with_golden_fields_from_salesforce(con):
    three_sources(con)
    result = run(con)
    key = cus(ANN)
    assert map_rows(con) == [
        ("bc:7", key, ANN, "customer_record", "bc", "7", "new_email", "r1"),
        ("ct:c1", key, ANN, "customer_record", "ct", "c1", "new_email", "r1"),
        ("sf:003A", key, ANN, "customer_record", "sf", "003A", "new_email", "r1"),
    ]
    assert rows(con, "SELECT * FROM identity.email_index") == [(ANN, key, AS_OF, "r1", "bc:7", 1)]   # map_seq: run 1
    assert result.new_identities == {"customer_record": 3} and result.new_emails == 1
    assert rows(con, "SELECT order_key, customer_key, is_guest, counts_as_order FROM analytics.orders ORDER BY 1") == [
        ("bc:100", key, False, True), ("ct:o1", key, False, True), ("sf:801A", key, False, True)]
    assert rows(con, """SELECT customer_key, email, email_canonical, first_name, last_name, market_id, sf_contact_id,
                               sf_account_id, first_order_at, orders_count, net_revenue, referral_code,
                               loyalty_points_balance, loyalty_vip_tier, email_normalized, marketing_consent,
                               created_at, source_record_keys, net_revenue_currency, last_order_at, phone, country,
                               golden_record_key, golden_source, identity_keys, is_deleted, updated_at
                        FROM analytics.customers""") == [(
        key, "Ann.Lee@Example.com", ANN, "Ann", "Lee", "us", "003A", "001A", ts("2026-03-01T10:00:00"), 3,
        Decimal("250.0000"), None, None, None, ANN, False, ts("2025-01-15T00:00:00"), ["bc:7", "ct:c1", "sf:003A"],
        "USD", ts("2026-03-09T10:00:00"), "+1 555 0100", "United Kingdom", "sf:003A", "sf",
        ["bc:7", "ct:c1", "sf:003A"], False, ts("2026-05-02T00:00:00"))]


def test_precedence_is_configurable_and_a_change_recomputes_every_customer(con):
    three_sources(con)
    run(con)
    bc_first = programs().model_copy(update={"system_of_record_precedence": ["bigcommerce", "commercetools", "salesforce"]})
    result = run(con, "r2", progs=bc_first)
    assert result.all_customers and result.customers_recomputed == 1
    assert customer_row(con, cus(ANN), "first_name, last_name, email, marketing_consent, golden_record_key, sf_contact_id") \
        == ("A", "Lee", "ann.lee@example.com", True, "bc:7", "003A")
    # with the same programs again nothing is recomputed
    assert run(con, "r3", progs=bc_first).customers_recomputed == 0


def test_ties_in_precedence_go_to_the_latest_update_and_fields_fall_back_to_the_next_record(con):
    customer(con, "ct:old", "kim@example.com", first_name="Old", last_name="Kim", updated_at="2026-01-01T00:00:00")
    customer(con, "ct:new", "kim@example.com", first_name="New", last_name="Kim", updated_at="2026-02-01T00:00:00",
             marketing_consent=None)
    customer(con, "bc:1", "kim@example.com", marketing_consent=True, updated_at="2026-03-01T00:00:00")
    run(con)
    assert customer_row(con, cus("kim@example.com"), "first_name, golden_record_key, marketing_consent") == \
        ("New", "ct:new", True)


def test_deleted_records_lose_precedence(con):
    customer(con, "sf:1", "lee@example.com", first_name="Deleted", is_deleted=True)
    customer(con, "ct:1", "lee@example.com", first_name="Live")
    run(con)
    assert customer_row(con, cus("lee@example.com"), "first_name, golden_record_key, is_deleted, sf_contact_id") == \
        ("Live", "ct:1", False, "1")
    customer(con, "ct:1", "lee@example.com", first_name="Live", is_deleted=True)
    run(con, "r2")
    assert customer_row(con, cus("lee@example.com"), "first_name, golden_record_key, is_deleted") == ("Deleted", "sf:1", True)


# --- aliases, email changes, collisions -------------------------------------------------------------

def test_gmail_dot_and_plus_alias_is_a_different_key_with_the_same_email_canonical(con):
    customer(con, "ct:c2", "bob.smith@gmail.com", first_name="Bob")
    customer(con, "bc:8", "B.o.b.Smith+shop@GoogleMail.com", first_name="Bob")
    customer(con, "sf:9", "bob.smith@example.com", first_name="Bob")
    customer(con, "ct:c3", "bob.smith+x@example.com", first_name="Bob")
    run(con)
    assert rows(con, "SELECT customer_key, email_normalized, email_canonical FROM analytics.customers ORDER BY 2") == [
        (cus("b.o.b.smith+shop@googlemail.com"), "b.o.b.smith+shop@googlemail.com", "bobsmith@gmail.com"),
        (cus("bob.smith+x@example.com"), "bob.smith+x@example.com", "bob.smith@example.com"),
        (cus("bob.smith@example.com"), "bob.smith@example.com", "bob.smith@example.com"),
        (cus("bob.smith@gmail.com"), "bob.smith@gmail.com", "bobsmith@gmail.com"),
    ]


def test_email_change_keeps_the_key_and_the_new_email_joins_it(con):
    customer(con, "sf:003A", ANN, first_name="Ann")
    run(con)
    key = cus(ANN)
    # the source record's email changes: same key, the new email now points to it
    customer(con, "sf:003A", "ann.new@example.com", first_name="Ann")
    result = run(con, "r2")
    assert key_of(con, "sf:003A") == key and result.new_identities == {} and result.new_emails == 1
    # map_seq: the identity run that added the row (one value per run)
    assert rows(con, "SELECT * FROM identity.email_index ORDER BY 1") == [
        (ANN, key, AS_OF, "r1", "sf:003A", 1), ("ann.new@example.com", key, AS_OF, "r2", "sf:003A", 2)]
    assert customer_row(con, key, "email, email_canonical") == ("ann.new@example.com", "ann.new@example.com")
    # later records with the new or the old email join the key
    customer(con, "bc:55", "Ann.New@Example.com")
    customer(con, "ct:77", ANN)
    run(con, "r3")
    assert map_rows(con) == [
        ("bc:55", key, "ann.new@example.com", "customer_record", "bc", "55", "known_email", "r3"),
        ("ct:77", key, ANN, "customer_record", "ct", "77", "known_email", "r3"),
        ("sf:003A", key, ANN, "customer_record", "sf", "003A", "new_email", "r1"),
    ]
    assert customer_row(con, key, "source_record_keys") == (["bc:55", "ct:77", "sf:003A"],)


def test_an_identity_whose_email_later_collides_keeps_its_key(con):
    customer(con, "sf:1", ANN, first_name="Ann")
    customer(con, "ct:2", "bob@example.com", first_name="Bob")
    run(con)
    customer(con, "ct:2", ANN, first_name="Bob")        # Bob's record now carries Ann's email
    run(con, "r2")
    assert key_of(con, "ct:2") == cus("bob@example.com") and key_of(con, "sf:1") == cus(ANN)
    assert rows(con, "SELECT email_normalized, customer_key FROM identity.email_index ORDER BY 1") == [
        (ANN, cus(ANN)), ("bob@example.com", cus("bob@example.com"))]
    assert rows(con, "SELECT customer_key, email FROM analytics.customers ORDER BY 1") == sorted(
        [(cus(ANN), ANN), (cus("bob@example.com"), ANN)])
    # a new record with that email joins the key the index holds (Ann's)
    customer(con, "bc:3", ANN)
    run(con, "r3")
    assert key_of(con, "bc:3") == cus(ANN)


def test_a_new_record_with_a_known_email_joins_the_key(con):
    customer(con, "ct:1", "dana@example.com")
    run(con)
    customer(con, "sf:2", "  DANA@example.com")
    customer(con, "bc:3", "dana.other@example.com")
    result = run(con, "r2")
    assert result.new_identities == {"customer_record": 2}
    assert rows(con, "SELECT identity_key, customer_key, assigned_by FROM identity.customer_map ORDER BY 1") == [
        ("bc:3", cus("dana.other@example.com"), "new_email"), ("ct:1", cus("dana@example.com"), "new_email"),
        ("sf:2", cus("dana@example.com"), "known_email")]


def test_records_without_email_get_a_key_of_their_own(con):
    customer(con, "sf:1", None, first_name="NoMail")
    customer(con, "sf:2", "not-an-email", first_name="Bad")
    run(con)
    assert rows(con, "SELECT identity_key, customer_key, assigned_by FROM identity.customer_map ORDER BY 1") == [
        ("sf:1", cus("sf:1"), "new_identity"), ("sf:2", cus("sf:2"), "new_identity")]
    assert rows(con, "SELECT count(*) FROM identity.email_index") == [(0,)]
    # the email becomes known later: the key stays, the email is indexed for it
    customer(con, "sf:1", "nomail@example.com", first_name="NoMail")
    run(con, "r2")
    assert key_of(con, "sf:1") == cus("sf:1")
    assert rows(con, "SELECT email_normalized, customer_key FROM identity.email_index") == [("nomail@example.com", cus("sf:1"))]


# --- guests and orders ------------------------------------------------------------------------------

def test_guest_orders_get_a_key_by_email_and_a_later_account_joins_it(con):
    order(con, "bc:100", None, email=" Guest@Example.org", gross="30", placed_at="2026-02-01T00:00:00")
    order(con, "ct:200", None, email="guest@example.org", gross="20", placed_at="2026-02-03T00:00:00",
          market_id="uk", currency="GBP")
    run(con)
    key = cus("guest@example.org")
    assert map_rows(con) == [("guest:guest@example.org", key, "guest@example.org", "guest", None, None, "new_email", "r1")]
    assert rows(con, "SELECT order_key, customer_key, is_guest, email_normalized FROM analytics.orders ORDER BY 1") == [
        ("bc:100", key, True, "guest@example.org"), ("ct:200", key, True, "guest@example.org")]
    assert customer_row(con, key, "email, first_name, market_id, orders_count, net_revenue, net_revenue_currency, "
                                  "source_record_keys, identity_keys, created_at") == (
        "guest@example.org", None, "us", 2, Decimal("30.0000"), "USD", [], ["guest:guest@example.org"],
        ts("2026-02-01T00:00:00"))
    # the guest registers: the account joins the guest key; its order counts too
    customer(con, "ct:c5", "GUEST@example.org", first_name="Gus", store="uk")
    order(con, "ct:201", "ct:c5", email="guest@example.org", gross="50", placed_at="2026-03-01T00:00:00")
    run(con, "r2")
    assert key_of(con, "ct:c5") == key
    assert customer_row(con, key, "email, first_name, orders_count, source_record_keys, identity_keys") == (
        "GUEST@example.org", "Gus", 3, ["ct:c5"], ["ct:c5", "guest:guest@example.org"])


def test_an_order_with_a_customer_record_does_not_make_its_email_an_identity(con):
    customer(con, "ct:c1", "owner@example.com")
    order(con, "ct:o1", "ct:c1", email="someone.else@example.com")
    run(con)
    assert rows(con, "SELECT identity_key FROM identity.customer_map") == [("ct:c1",)]
    assert rows(con, "SELECT order_key, customer_key, is_guest FROM analytics.orders") == [
        ("ct:o1", cus("owner@example.com"), False)]
    assert rows(con, "SELECT email_normalized FROM identity.email_index") == [("owner@example.com",)]


def test_an_order_naming_an_unstaged_customer_record(con):
    order(con, "bc:101", "bc:999", email="ghost@example.org", gross="30")
    order(con, "sf:801Z", "sf:003Z", gross="40")            # Salesforce orders carry no email
    run(con)
    assert map_rows(con) == [
        ("bc:999", cus("ghost@example.org"), "ghost@example.org", "customer_record", "bc", "999", "new_email", "r1"),
        ("sf:003Z", cus("sf:003Z"), None, "customer_record", "sf", "003Z", "new_identity", "r1")]
    # the record arrives later (it was quarantined, or extracted after its order): the key stays
    customer(con, "bc:999", "other@example.org", first_name="Gina")
    customer(con, "sf:003Z", "zed@example.org", first_name="Zed")
    run(con, "r2")
    assert key_of(con, "bc:999") == cus("ghost@example.org") and key_of(con, "sf:003Z") == cus("sf:003Z")
    assert customer_row(con, cus("sf:003Z"), "email, first_name, orders_count, source_record_keys") == (
        "zed@example.org", "Zed", 1, ["sf:003Z"])


def test_customer_order_figures_exclude_cancelled_declined_and_incomplete_orders(con):
    customer(con, "ct:c1", "eve@example.com", store="uk", created_at="2026-01-10T00:00:00")
    order(con, "ct:o1", "ct:c1", status="cancelled", gross="500", placed_at="2026-02-01T00:00:00", market_id="eu", currency="EUR")
    order(con, "ct:o2", "ct:c1", status="declined", gross="300", placed_at="2026-02-02T00:00:00", market_id="eu", currency="EUR")
    order(con, "ct:o3", "ct:c1", status="incomplete", gross="200", placed_at="2026-02-03T00:00:00", market_id="eu", currency="EUR")
    order(con, "ct:o4", "ct:c1", status="paid", gross="100", placed_at="2026-02-04T00:00:00", market_id="uk", currency="GBP")
    order(con, "ct:o5", "ct:c1", status="partially_refunded", gross="100", refunded="60",
          placed_at="2026-02-05T00:00:00", market_id="uk", currency="GBP")
    order(con, "ct:o6", "ct:c1", status="refunded", gross="70", refunded="70", placed_at="2026-02-06T00:00:00",
          market_id="uk", currency="GBP")
    order(con, "ct:o7", "ct:c1", status="completed", gross="90", placed_at="2026-02-07T00:00:00", market_id="uk",
          currency="EUR")                                   # another currency: counted, not in net_revenue
    order(con, "ct:o8", "ct:c1", status="completed", gross="999", placed_at="2026-01-20T00:00:00", market_id="uk",
          currency="GBP", is_deleted=True)                  # deleted at the source
    customer(con, "ct:c2", "fay@example.com", store="eu", created_at="2026-01-12T00:00:00")
    order(con, "ct:o9", "ct:c2", status="cancelled", gross="80", placed_at="2026-01-05T00:00:00", market_id="uk", currency="GBP")
    run(con)
    cols = "first_order_at, last_order_at, orders_count, net_revenue, net_revenue_currency, market_id, created_at"
    assert customer_row(con, cus("eve@example.com"), cols) == (
        ts("2026-02-04T00:00:00"), ts("2026-02-07T00:00:00"), 4, Decimal("140.0000"), "GBP", "uk", ts("2026-01-10T00:00:00"))
    # only cancelled orders: no first order, nothing counted, market from the record's store
    assert customer_row(con, cus("fay@example.com"), cols) == (
        None, None, 0, Decimal("0.0000"), "EUR", "eu", ts("2026-01-05T00:00:00"))
    assert rows(con, "SELECT order_key FROM analytics.orders WHERE counts_as_order ORDER BY 1") == [
        ("ct:o4",), ("ct:o5",), ("ct:o6",), ("ct:o7",)]
    # the cancelled order is reinstated: it becomes the first order
    order(con, "ct:o9", "ct:c2", status="completed", gross="80", placed_at="2026-01-05T00:00:00", market_id="uk", currency="GBP")
    run(con, "r2")
    assert customer_row(con, cus("fay@example.com"), cols) == (
        ts("2026-01-05T00:00:00"), ts("2026-01-05T00:00:00"), 1, Decimal("80.0000"), "GBP", "uk", ts("2026-01-05T00:00:00"))


def test_market_of_customers_without_orders_comes_from_store_source_or_country():
    hints = market_hints(programs())
    assert [r for r in hints.rows if r[0] != "country"] == [
        ("store", "ct", "eu", None, "eu"), ("store", "ct", "uk", None, "uk"), ("store", "ct", "us", None, "us"),
        ("source", "bc", None, None, "us")]
    countries = {r[3]: r[4] for r in hints.rows if r[0] == "country"}
    assert countries["united kingdom"] == "uk" and countries["gb"] == "uk" and countries["united states"] == "us"
    assert countries["de"] == "eu" and countries["netherlands"] == "eu" and countries["france"] == "eu"
    assert "canada" not in countries and "f" not in countries


def test_market_hints_on_customers(con):
    customer(con, "sf:1", "a@example.com", country="United Kingdom")
    customer(con, "sf:2", "b@example.com", country="Atlantis")
    customer(con, "ct:3", "c@example.com", store="eu", country="US")      # the store wins over the country
    customer(con, "bc:4", "d@example.com", country="DE")                  # the source feeds one market only
    run(con)
    assert rows(con, "SELECT email, market_id FROM analytics.customers ORDER BY 1") == [
        ("a@example.com", "uk"), ("b@example.com", None), ("c@example.com", "eu"), ("d@example.com", "us")]


# --- Friendbuy people -------------------------------------------------------------------------------

def parties(con):
    return rows(con, """SELECT event_key, advocate_customer_key, advocate_resolved_by, friend_customer_key, friend_resolved_by
                        FROM identity.referral_parties ORDER BY 1""")


def test_friendbuy_people_resolve_by_email_first_then_by_customer_id(con):
    customer(con, "sf:003A", ANN)
    customer(con, "bc:5", "five.bc@example.com")
    customer(con, "ct:5", "five.ct@example.com")
    customer(con, "ct:c9", "cal@example.com")
    run(con)
    ann, cal = cus(ANN), cus("cal@example.com")
    event(con, "1", "share", advocate_email=ANN, advocate_customer_id="ct:c9", referral_code="ANN1")   # email wins
    event(con, "2", "share", advocate_customer_id=ann, referral_code="ANN2", occurred_at="2026-02-02T00:00:00")
    event(con, "3", "signup", advocate_customer_id="003A", friend_customer_id="sf:003A")
    event(con, "4", "signup", advocate_customer_id="5", friend_customer_id="nobody")                  # ambiguous, unknown
    event(con, "5", "signup", advocate_customer_id="c9", friend_email="pat@example.com")              # prospect
    event(con, "6", "share", advocate_email="cal.alt@example.com", advocate_customer_id="c9", referral_code="CAL1")
    event(con, "7", "click")                                                                          # anonymous
    result = run(con, "r2")
    assert result.new_identities == {"friendbuy": 2}
    assert parties(con) == [
        ("fb:click:7", None, None, None, None),
        ("fb:share:1", ann, "email", None, None),
        ("fb:share:2", ann, "customer_key", None, None),
        ("fb:share:6", cal, "email", None, None),
        ("fb:signup:3", ann, "source_customer_id", ann, "source_customer_id"),
        ("fb:signup:4", None, "ambiguous_customer_id", None, "unknown_customer_id"),
        ("fb:signup:5", cal, "source_customer_id", cus("pat@example.com"), "email"),
    ]
    assert rows(con, "SELECT identity_key, customer_key, assigned_by FROM identity.customer_map "
                     "WHERE identity_type = 'friendbuy' ORDER BY 1") == [
        ("friendbuy:cal.alt@example.com", cal, "friendbuy_customer_id"),
        ("friendbuy:pat@example.com", cus("pat@example.com"), "new_email")]
    # the latest share's code is the advocate's referral code; the prospect has a customers row
    assert customer_row(con, ann, "referral_code") == ("ANN2",)
    assert customer_row(con, cal, "referral_code") == ("CAL1",)
    assert customer_row(con, cus("pat@example.com"), "email, source_record_keys, identity_keys, created_at, market_id") == (
        "pat@example.com", [], ["friendbuy:pat@example.com"], ts("2026-02-01T00:00:00"), None)
    # a prospect who later registers joins the Friendbuy key; the unknown friend id resolves when its record arrives
    customer(con, "ct:p1", "PAT@example.com", first_name="Pat")
    customer(con, "bc:nobody", "nobody@example.com")
    run(con, "r3")
    assert key_of(con, "ct:p1") == cus("pat@example.com")
    assert parties(con)[5] == ("fb:signup:4", None, "ambiguous_customer_id", cus("nobody@example.com"), "source_customer_id")
    assert customer_row(con, cus("pat@example.com"), "first_name, source_record_keys") == ("Pat", ["ct:p1"])


def test_unresolved_friendbuy_ids_are_not_rewritten_while_nothing_matches(con):
    event(con, "1", "share", advocate_customer_id="ghost-id", referral_code="G1")
    run(con)
    before = snapshot(con)
    result = run(con, "r2")
    assert result.events_changed == 0 and snapshot(con) == before


# --- incremental runs, removals, idempotency, determinism -------------------------------------------

def full_world(con):
    three_sources(con)
    customer(con, "ct:c2", "bob.smith@gmail.com", first_name="Bob", store="uk")
    customer(con, "bc:8", "b.o.b.smith+shop@googlemail.com", first_name="Bob")
    order(con, "bc:300", None, email="guest@example.org", gross="30")
    order(con, "ct:o2", "ct:c2", gross="45", status="cancelled", market_id="uk", currency="GBP")
    order(con, "bc:301", "bc:999", email="ghost@example.org", gross="30")
    event(con, "1", "share", advocate_email=ANN, referral_code="ANN1")
    event(con, "2", "signup", advocate_customer_id="003A", friend_email="pat@example.com")
    event(con, "3", "friend_incentive", advocate_email=ANN, friend_email="prospect@example.com", coupon_code="FRIEND10")


def test_rerun_without_input_change_changes_nothing(con):
    full_world(con)
    run(con)
    before = snapshot(con)
    progress = rows(con, "SELECT * FROM ops.stage_progress ORDER BY 1")
    result = run(con, "r2")
    assert snapshot(con) == before
    assert rows(con, "SELECT * FROM ops.stage_progress ORDER BY 1") == progress
    assert (result.records_changed, result.orders_changed, result.events_changed, result.new_identities,
            result.new_emails, result.customers_recomputed, result.full_compare) == (0, 0, 0, {}, 0, 0, [])


def test_keys_are_the_same_when_the_identity_tables_are_rebuilt_from_scratch(con):
    # incrementally: records first, orders next, Friendbuy last
    full_world(con)
    staged = {t: rows(con, f"SELECT * FROM staging.{t}") for t in ("customers", "orders", "referral_events")}
    con.execute("CREATE TABLE main.held_orders AS SELECT * FROM staging.orders")
    con.execute("CREATE TABLE main.held_events AS SELECT * FROM staging.referral_events")
    con.execute("DELETE FROM staging.orders")
    con.execute("DELETE FROM staging.referral_events")
    run(con, "a1")
    con.execute("INSERT INTO staging.orders SELECT * FROM main.held_orders")
    run(con, "a2")
    con.execute("INSERT INTO staging.referral_events SELECT * FROM main.held_events")
    run(con, "a3")
    incremental = snapshot(con, versions=False)
    # from scratch: the same staging rows, one run
    fresh = new_db()
    for table, table_rows in staged.items():
        for row in table_rows:
            fresh.execute(f"INSERT INTO staging.{table} VALUES ({', '.join('?' for _ in row)})", list(row))
    run(fresh, "b1")
    rebuilt = snapshot(fresh, versions=False)
    pairs = "SELECT identity_key, customer_key, email_normalized_at_assignment, identity_type FROM identity.customer_map ORDER BY 1"
    assert rows(con, pairs) == rows(fresh, pairs)
    assert rows(con, "SELECT email_normalized, customer_key FROM identity.email_index ORDER BY 1") == \
        rows(fresh, "SELECT email_normalized, customer_key FROM identity.email_index ORDER BY 1")
    for table in ("analytics.customers", "analytics.orders", "identity.referral_parties", "identity.record_state",
                  "identity.order_state"):
        assert incremental[table] == rebuilt[table], table
    # a rebuild in place recomputes the same outputs and keeps the map
    result = run(con, "a4", rebuild=True)
    assert result.rebuild and result.new_identities == {}
    assert snapshot(con, versions=False) == incremental
    fresh.close()


def test_records_and_orders_that_leave_staging(con):
    full_world(con)
    run(con)
    key = cus(ANN)
    delete_staged(con, "staging.customers", "customer_record_key", "bc:7")    # moved to quarantine
    delete_staged(con, "staging.orders", "order_key", "sf:801A")
    result = run(con, "r2")
    assert sorted(result.full_compare) == ["customers", "orders"]
    assert (result.records_removed, result.orders_removed) == (1, 1)
    assert key_of(con, "bc:7") == key                                            # the map keeps the identity
    assert customer_row(con, key, "source_record_keys, orders_count, net_revenue, first_order_at") == (
        ["ct:c1", "sf:003A"], 2, Decimal("130.0000"), ts("2026-03-05T10:00:00"))
    assert rows(con, "SELECT count(*) FROM analytics.orders WHERE order_key = 'sf:801A'") == [(0,)]
    # back from quarantine
    customer(con, "bc:7", "ann.lee@example.com", first_name="A")
    run(con, "r3")
    assert customer_row(con, key, "source_record_keys") == (["bc:7", "ct:c1", "sf:003A"],)


def test_an_order_moving_to_another_customer_updates_both(con):
    customer(con, "bc:1", "one@example.com")
    customer(con, "bc:2", "two@example.com")
    order(con, "bc:10", "bc:1", gross="100")
    run(con)
    order(con, "bc:10", "bc:2", gross="100")
    result = run(con, "r2")
    assert result.customers_recomputed == 2
    assert rows(con, "SELECT email, orders_count, net_revenue FROM analytics.customers ORDER BY 1") == [
        ("one@example.com", 0, Decimal("0.0000")), ("two@example.com", 1, Decimal("100.0000"))]


def test_a_staged_row_with_an_older_load_seq_is_still_picked_up(con):
    customer(con, "ct:1", "one@example.com")
    run(con)
    # a row staged late with a load_seq below the watermark
    con.execute("""INSERT INTO staging.customers (customer_record_key, source, source_type, source_customer_id, email_raw,
                   email_normalized, is_deleted, load_seq) VALUES ('ct:2', 'ct', 'commercetools', '2', 'late@example.com',
                   'late@example.com', FALSE, 0)""")
    result = run(con, "r2")
    assert result.full_compare == ["customers"] and key_of(con, "ct:2") == cus("late@example.com")


def test_loyalty_columns_are_kept_when_a_customer_is_recomputed(con):
    customer(con, "ct:1", "one@example.com", first_name="One")
    run(con)
    con.execute("UPDATE analytics.customers SET loyalty_points_balance = 120, loyalty_vip_tier = 'Gold'")
    customer(con, "ct:1", "one@example.com", first_name="Uno")
    run(con, "r2")
    assert customer_row(con, cus("one@example.com"), "first_name, loyalty_points_balance, loyalty_vip_tier") == ("Uno", 120, "Gold")
    run(con, "r3", rebuild=True)
    assert customer_row(con, cus("one@example.com"), "loyalty_points_balance, loyalty_vip_tier") == (120, "Gold")


def test_a_failed_run_leaves_nothing_behind(con, monkeypatch):
    customer(con, "ct:1", "one@example.com")
    from referral_pipeline.transform.identity import runner
    broken = dict(runner.CUSTOMERS, customers_insert="SELECT no_such_column FROM analytics.customers")
    monkeypatch.setattr(runner, "CUSTOMERS", broken)
    with pytest.raises(Exception):
        run(con)
    assert rows(con, "SELECT count(*) FROM identity.customer_map") == [(0,)]
    assert rows(con, "SELECT count(*) FROM ops.stage_progress WHERE stage LIKE '%identity'") == [(0,)]
    monkeypatch.undo()
    run(con)
    assert key_of(con, "ct:1") == cus("one@example.com")


def test_customers_load_seq_marks_the_rows_each_run_rewrote(con):
    customer(con, "ct:1", "one@example.com", first_name="One")
    customer(con, "ct:2", "two@example.com", first_name="Two")
    run(con)
    run(con, "r2")                                      # no change: no write sequence used
    customer(con, "ct:2", "two@example.com", first_name="Deux")
    run(con, "r3")
    assert rows(con, "SELECT email, first_name, load_seq FROM analytics.customers ORDER BY 1") == [
        ("one@example.com", "One", 1), ("two@example.com", "Deux", 2)]
