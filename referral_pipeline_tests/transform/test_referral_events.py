"""analytics.referral_events: Friendbuy activity of the programs' campaigns with both parties
resolved to a customer_key (email first, then customer_key, then an unambiguous source record)."""
from __future__ import annotations

import pytest

from referral_pipeline.transform.attribution import run_referral_events

from .referrals_support import World, at, new_db, programs, rows


@pytest.fixture
def con():
    c = new_db()
    yield c
    c.close()


def test_parties_resolve_through_identity_and_only_programs_campaigns_count(con):
    w = World(con)
    w.customer("alice")                                          # record sf:ALICE
    w.customer("carol")
    w.customer("dan", records=("ct:DAN",))                       # only in commercetools
    w.customer("dup1", records=("sf:DUP",))
    w.customer("dup2", records=("ct:DUP",))                      # 'DUP' names two people in market us
    w.event("share", at(0), advocate="alice", key="e-by-record")
    w.event("share", at(0), advocate_email="alice@example.com", key="e-by-email")
    w.event("share", at(0), key="e-by-key")
    con.execute("UPDATE staging.referral_events SET advocate_customer_id = 'cus_alice' WHERE event_key = 'e-by-key'")
    w.event("share", at(0), advocate="alice", advocate_email="carol@example.com", key="e-email-wins")
    w.event("share", at(0), advocate="dan", campaign="camp-uk", key="e-uk-ct")   # ct feeds uk too
    w.event("share", at(0), advocate="dup", key="e-ambiguous")
    w.event("signup", at(0), advocate="alice", friend_email="nobody@example.com", key="e-unknown-friend")
    w.event("share", at(0), advocate="alice", campaign="camp-other", key="e-other-campaign")
    w.event("share", at(50), advocate="alice", key="e-after-as-of")

    result = run_referral_events(con, programs(), at(40))

    assert rows(con, "SELECT event_key, kind, market_id, campaign_id, advocate_customer_key, friend_customer_key "
                     "FROM analytics.referral_events ORDER BY event_key") == [
        ("e-ambiguous", "share", "us", "camp-us", None, None),
        ("e-by-email", "share", "us", "camp-us", "cus_alice", None),
        ("e-by-key", "share", "us", "camp-us", "cus_alice", None),
        ("e-by-record", "share", "us", "camp-us", "cus_alice", None),
        ("e-email-wins", "share", "us", "camp-us", "cus_carol", None),
        ("e-uk-ct", "share", "uk", "camp-uk", "cus_dan", None),
        ("e-unknown-friend", "signup", "us", "camp-us", "cus_alice", None),
    ]
    assert result.unresolved == {"advocate": 1, "friend": 1}
    # a re-run with no input change writes nothing
    again = run_referral_events(con, programs(), at(40))
    assert again.changes.changed == 0
    # the later event enters once as_of passes it; the friend resolves once identity knows the email
    w.customer("nobody")
    later = run_referral_events(con, programs(), at(60))
    assert (later.changes.inserted, later.changes.updated, later.changes.deleted) == (1, 1, 0)
    assert rows(con, "SELECT friend_customer_key FROM analytics.referral_events WHERE event_key = 'e-unknown-friend'") == [
        ("cus_nobody",)]
