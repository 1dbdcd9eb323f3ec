"""A generated world (``tiny``, seed 1) through the commercetools extraction and staging: every
planted malformed record is quarantined with the expected reason, everything else is staged, and
the counts agree with the manifest."""
from __future__ import annotations

import json

import pytest

from referral_pipeline.config.programs import load_programs
from referral_pipeline.sandbox.generator import ensure_generated
from referral_pipeline.transform.staging.runner import write_market_rules

from .commercetools_support import client_for, extract_all, new_db, rows, serve, stage_all

# the generator's planted reasons -> quarantine reason codes (docs/quarantine.md); None: staged
REASON_CODE = {"missing_email": None, "malformed_email": None, "overlong_field": "field_too_long",
               "invalid_utf8": "invalid_text", "non_numeric_amount": "unparseable_amount",
               "negative_amount": "negative_amount", "non_finite_amount": "non_finite_amount",
               "unknown_currency": "unknown_currency", "unidentifiable_customer": "unidentifiable_customer",
               "unparseable_date": "unparseable_date"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return ensure_generated("tiny", 1, tmp_path_factory.mktemp("worlds"))


def test_generated_world_is_staged_or_quarantined_as_planted(world):
    manifest = json.loads((world / "manifest.json").read_text())
    planted = [p for p in manifest["planted"]["malformed"] if p["source"] == "ct"]
    assert planted, "the tiny world plants malformed commercetools records"
    with serve(world) as sim:
        con = new_db()
        write_market_rules(con, load_programs(world / "programs.yaml"))
        fetched = {e: r.counts.fetched for e, r in extract_all(con, client_for(sim)).items()}
        stage_all(con)
    files = manifest["files"]
    assert fetched == {"customers": manifest["counts"]["customer_records"]["ct"], "orders": manifest["counts"]["orders"]["ct"],
                       "discount_codes": files["commercetools/discount-codes.jsonl"]["records"],
                       "cart_discounts": files["commercetools/cart-discounts.jsonl"]["records"]}
    expected = {(p["entity"], p["id"], REASON_CODE[p["reason"]]) for p in planted if REASON_CODE[p["reason"]]}
    assert set(rows(con, "SELECT entity, source_id, reason FROM audit.quarantine_current WHERE source = 'ct'")) == expected
    for p in planted:
        if REASON_CODE[p["reason"]] is None:    # a bad email on a customer: staged, not mergeable by email
            assert rows(con, "SELECT email_normalized FROM staging.customers WHERE source_customer_id = ?",
                        [p["id"]]) == [(None,)]
    staged = {"customers": rows(con, "SELECT count(*) FROM staging.customers")[0][0],
              "orders": rows(con, "SELECT count(*) FROM staging.orders")[0][0],
              "discount_codes": rows(con, "SELECT count(*) FROM staging.coupons")[0][0]}
    for entity, n in staged.items():
        quarantined = sum(1 for e, _, _ in expected if e == entity)
        assert n + quarantined == fetched[entity], entity
    # every staged order has a market, its lines, and the order-level amounts add up
    assert rows(con, "SELECT count(*) FROM staging.orders WHERE market_id IS NULL OR net_amount < 0")[0][0] == 0
    assert rows(con, "SELECT count(*) FROM staging.orders o WHERE NOT EXISTS "
                     "(SELECT 1 FROM staging.order_items i WHERE i.order_key = o.order_key)")[0][0] == 0
    assert rows(con, "SELECT count(*) FROM staging.orders WHERE gross_amount - discount_amount - refunded_amount "
                     "<> net_amount")[0][0] == 0
    refunded = rows(con, "SELECT count(*) FROM staging.orders o WHERE status IN ('refunded', 'partially_refunded') "
                         "AND NOT EXISTS (SELECT 1 FROM staging.refunds r WHERE r.order_key = o.order_key)")
    assert refunded == [(0,)]
