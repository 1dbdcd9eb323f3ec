"""Friendbuy rows staged into ``staging.referral_events`` over real HTTP: the mapping of every
export kind, and planted malformed rows going to ``audit.quarantine`` with the documented reasons."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import orjson

from referral_pipeline.extract.friendbuy import REPORTS, FriendbuyExtractor, row_key
from referral_pipeline.warehouse.landing import RawWriter

from .friendbuy_support import (advocate_reward, at, clean_world, click, client_for, extract_all, friend_incentive,
                                friendbuy_sim, new_warehouse, purchase, share, sign_up, stage_all, widget_view,
                                write_world)

COLUMNS = ("kind", "campaign_id", "occurred_at", "advocate_customer_id", "advocate_email", "friend_customer_id",
           "friend_email", "referral_code", "coupon_code", "order_id", "amount", "currency", "channel", "ip_address",
           "user_agent", "new_customer", "reward_type")
NO_ADVOCATE = {"advocateCustomerId": None, "advocateEmail": None, "advocateName": None}

# (entity, row, expected quarantine reason)
PLANTED = [
    ("shares", share(90, 5, advocateCustomerId=None, advocateEmail="ada at example.com"), "malformed_email"),
    ("shares", share(91, 6, **NO_ADVOCATE), "missing_email"),
    ("clicks", click(92, 7, createdOn="2025-13-45T99:00:00Z"), "unparseable_date"),
    ("account_sign_ups", sign_up(93, 8, customerId=None, email=""), "missing_email"),
    ("account_sign_ups", sign_up(94, 9, userAgent="M" * 1001), "field_too_long"),
    ("purchases", purchase(95, 10, amount=-5), "negative_amount"),
    ("purchases", purchase(96, 11, amount="12,50"), "unparseable_amount"),
    ("purchases", purchase(97, 12, amount="NaN"), "non_finite_amount"),
    ("purchases", purchase(98, 13, currency="ZZZ"), "unknown_currency"),
    ("purchases", purchase(99, 14, name="Fr\ufffdd"), "invalid_text"),
    ("purchases", purchase(100, 15, advocateCustomerId=None, advocateEmail="ada@"), "malformed_email"),
    ("distributed_advocate_rewards", advocate_reward(101, 16, rewardAmount=-20), "negative_amount"),
    ("distributed_friend_incentives", friend_incentive(102, 17, friendEmail="f" * 250 + "@example.com"),
     "field_too_long"),
    ("widget_views", widget_view(103, 18, customerId=None, email="viewer103@@example"), "malformed_email"),
]
# odd but acceptable rows: staged, with the unusable parts left NULL
ACCEPTED = [
    ("clicks", click(104, 19, **NO_ADVOCATE)),                               # anonymous click on a code
    ("widget_views", widget_view(105, 20, customerId=None, email=None)),     # anonymous view
    ("purchases", purchase(106, 21, email="not-an-email")),                  # customerId still identifies
]


def staged_row(con, event_key):
    cols = ", ".join(COLUMNS)
    return con.execute(f"SELECT {cols} FROM staging.referral_events WHERE event_key = ?", [event_key]).fetchone()


def test_each_export_kind_maps_to_the_canonical_columns(tmp_path):
    world = clean_world(n=2)
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        con = new_warehouse()
        extract_all(con, client_for(sim), "r1")
        stage_all(con, "r1")
    key = lambda entity, i: f"fb:{REPORTS[entity][1]}:{row_key(world[entity][i])}"  # noqa: E731
    ts = lambda minutes: datetime.fromisoformat(at(minutes).replace("Z", "+00:00"))  # noqa: E731
    assert staged_row(con, key("shares", 1)) == (
        "share", "camp-us", ts(17), "adv-1", "advocate1@example.com", None, None, "code1", None, None, None, None,
        "facebook", "10.0.0.1", "Mozilla/5.0 (share)", None, None)
    assert staged_row(con, key("clicks", 0)) == (
        "click", "camp-us", ts(1), "adv-0", "advocate0@example.com", None, None, "code0", None, None, None, None,
        "email", "10.1.0.0", "Mozilla/5.0 (click)", None, None)
    assert staged_row(con, key("account_sign_ups", 1)) == (
        "signup", "camp-us", ts(19), "adv-1", "advocate1@example.com", "friend-1", "friend1@example.com", "code1",
        None, None, None, None, "facebook", "10.2.0.1", "Mozilla/5.0 (signup)", True, None)
    assert staged_row(con, key("purchases", 1)) == (
        "purchase", "camp-us", ts(20), "adv-1", "advocate1@example.com", "friend-1", "friend1@example.com", "code1",
        "FRI-1", "sf:ord-1", Decimal("51"), None, None, "10.3.0.1", None, True, None)
    assert staged_row(con, key("distributed_advocate_rewards", 0)) == (
        "advocate_reward", "camp-us", ts(4), "adv-0", "advocate0@example.com", "friend-0", "friend0@example.com",
        "code0", None, None, Decimal("20"), None, "email", None, None, None, "Account Credit")
    assert staged_row(con, key("distributed_friend_incentives", 1)) == (
        "friend_incentive", "camp-us", ts(22), "adv-1", "advocate1@example.com", "friend-1", "friend1@example.com",
        "code1", "FRI-1", None, Decimal("10"), None, "facebook", None, None, None, "Coupon Code")
    # a view of the advocate share widget is the advocate's; an email-capture view is a friend's
    assert staged_row(con, key("widget_views", 0)) == (
        "widget_view", "camp-us", ts(6), "viewer-0", "viewer0@example.com", None, None, None, None, None, None, None,
        None, "10.4.0.0", "Mozilla/5.0 (view)", None, None)
    assert staged_row(con, key("widget_views", 1))[3:7] == (None, None, "viewer-1", "viewer1@example.com")


def test_malformed_rows_are_quarantined_and_everything_else_staged(tmp_path):
    world = clean_world(n=4)
    for entity, row, *_ in PLANTED + ACCEPTED:
        world[entity].append(row)
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        con = new_warehouse()
        extracted = extract_all(con, client_for(sim), "r1")
        staged = stage_all(con, "r1")
    for entity, rows in world.items():
        # every row the source returned landed (none has an unusable key), and went to exactly one place
        assert extracted[entity].counts.new == len(rows)
        assert staged[entity].staged + staged[entity].quarantined == len(rows)
    quarantined = con.execute("SELECT entity, source_id, reason FROM audit.quarantine_current ORDER BY ALL").fetchall()
    assert quarantined == sorted((entity, row_key(row), reason) for entity, row, reason in PLANTED)
    assert con.execute("SELECT count(*) FROM staging.referral_events").fetchone()[0] == 7 * 4 + len(ACCEPTED)
    payload, detail = con.execute("SELECT payload, detail FROM audit.quarantine WHERE reason = 'unparseable_date'"
                                  ).fetchone()
    assert orjson.loads(payload) == PLANTED[2][1] and detail == "createdOn: 2025-13-45T99:00:00Z"
    details = dict(con.execute("SELECT source_id, detail FROM audit.quarantine").fetchall())
    assert details[row_key(PLANTED[0][1])] == "email: ada at example.com"
    assert details[row_key(PLANTED[5][1])] == "amount: -5"
    # the accepted odd rows: anonymous click and view, a purchase whose bad email is dropped
    anonymous_click = staged_row(con, f"fb:click:{row_key(ACCEPTED[0][1])}")
    assert anonymous_click[3:8] == (None, None, None, None, "code4")
    assert staged_row(con, f"fb:widget_view:{row_key(ACCEPTED[1][1])}")[3:7] == (None, None, None, None)
    assert staged_row(con, f"fb:purchase:{row_key(ACCEPTED[2][1])}")[5:7] == ("friend-106", None)
    # a re-run neither stages nor quarantines anything again
    with friendbuy_sim(write_world(tmp_path, world)) as sim:
        extract_all(con, client_for(sim), "r2")
    assert all(r.processed == 0 for r in stage_all(con, "r2").values())
    assert con.execute("SELECT count(*) FROM audit.quarantine").fetchone()[0] == len(PLANTED)


def test_row_without_created_on_is_quarantined_as_missing_field():
    """The simulator stamps fixture rows that lack createdOn, so this case is landed directly."""
    con = new_warehouse()
    extractor = FriendbuyExtractor(None, "fb", "shares")
    writer = RawWriter(con, "fb", "shares", "r1", pk_of=extractor.pk_of, stamp_of=extractor.stamp_of)
    writer.add([share(1, 0, createdOn=None), share(2, 0)])
    writer.commit(None)
    result = stage_all(con, "r1")["shares"]
    assert (result.staged, result.reasons) == (1, {"missing_required_field": 1})
    occurred = con.execute("SELECT occurred_at FROM staging.referral_events").fetchone()[0]
    assert occurred == datetime(2025, 3, 1, tzinfo=timezone.utc)
