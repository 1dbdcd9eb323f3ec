"""The generated ``tiny`` world through the sandbox and the ``nightly`` job: every planted fraud case
of ``manifest.json`` shows up as a flag of its rule, and a second run appends nothing."""
from __future__ import annotations

import json

from referral_pipeline.sandbox.generator import generate_world

from .harness import Pipeline

AS_OF = "2026-11-15T00:00:00Z"   # after the generated window: every planted order is placed


def planted_order_flags(manifest: dict) -> set[tuple[str, str]]:
    """(rule, order_key) the manifest says must be flagged (order subjects)."""
    expected = set()
    for rule, cases in manifest["planted"]["fraud"].items():
        if rule == "VELOCITY_IP":          # its subjects are sign-ups: checked by count below
            continue
        for case in cases:
            for person in case["friends"] + case["extra_orders"]:
                if person["flagged"] and person.get("order"):
                    expected.add((rule, person["order"]["order_key"]))
            if rule == "SELF_REFERRAL" and case.get("variant") == "email_alias":
                expected |= {("DUPLICATE_IDENTITY", f["order"]["order_key"]) for f in case["friends"] if f["flagged"]}
    return expected


def test_tiny_world_planted_fraud_is_flagged(tmp_path, monkeypatch):
    generate_world("tiny", 1, tmp_path / "world")
    manifest = json.loads((tmp_path / "world" / "manifest.json").read_text())
    expected = planted_order_flags(manifest)
    assert expected, "the tiny world plants fraud cases"
    with Pipeline(tmp_path, monkeypatch, tmp_path / "world") as pipe:   # the world's own programs.yaml
        pipe.run(AS_OF)
        order_flags = set(pipe.query("SELECT rule, subject_key FROM audit.fraud_flags WHERE subject_type = 'order'"))
        # exactly the planted order cases: none missed, and nothing flagged on the natural referrals
        assert order_flags == expected
        # sign-up subjects: only the planted friends' sign-ups, under a rule their order has (or VELOCITY_IP)
        friend_rules = set(pipe.query(
            "SELECT rule, friend_customer_key FROM audit.fraud_flags WHERE subject_type = 'order'"))
        signup_flags = pipe.query("SELECT rule, friend_customer_key FROM audit.fraud_flags WHERE subject_type = 'signup'")
        for rule, friend in signup_flags:
            assert rule == "VELOCITY_IP" or (rule, friend) in friend_rules, (rule, friend)
        velocity_ip = sum(f["flagged"] for c in manifest["planted"]["fraud"].get("VELOCITY_IP", []) for f in c["friends"])
        assert sum(r == "VELOCITY_IP" for r, _ in signup_flags) == velocity_ip
        before = pipe.snapshot()
        pipe.run(AS_OF)
        assert pipe.snapshot() == before
