"""Yotpo Loyalty state before the pipeline's first run: loyalty ``customers`` for part of the
``us`` market (the flat ``GET /customers`` shape, keyed by lower-case email, with the
``referral_code`` object that ``with_referral_code=true`` adds), ``vip-tiers`` and
``redemption-options``. Points follow the program: 1 point per dollar of completed spend plus a
100-point sign-up bonus, 500 points per redeemed perk.
"""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from . import ids
from .common import CustomerIds
from .frame import Frame
from .orders import World
from .settings import END_MS, MS_PER_DAY, US
from .writer import FixtureWriter

LOYALTY_SHARE = 0.45
SIGNUP_BONUS = 100
PERK_COST = 500
TIERS = (("Bronze", 0, 1.0), ("Silver", 500, 1.25), ("Gold", 1500, 1.5))
REDEMPTION_OPTIONS = (
    (101, "$5 off", 500, 500, "fixed_amount"),
    (102, "$12 off", 1000, 1200, "fixed_amount"),
    (103, "10% off", 800, 0, "percentage"),
    (104, "Free shipping", 300, 0, "free_shipping"),
)


def write_reference_data(w: FixtureWriter) -> None:
    w.write_rows("yotpo/vip-tiers.jsonl", [
        {"id": i + 1, "name": name, "description": f"{name} members earn {mult}x points",
         "points_earned": threshold, "amount_spent_cents": threshold * 100, "purchases_made": 0,
         "points_multiplier": mult, "rank": i + 1} for i, (name, threshold, mult) in enumerate(TIERS)])
    w.write_rows("yotpo/redemption-options.jsonl", [
        {"id": oid, "name": name, "description": f"Redeem {cost} points for {name}", "icon": "fa-tag",
         "cost_text": f"{cost} Points", "amount": cost, "applies_to_product_type": "ALL", "duration": "single_use",
         "type": f"generic_{kind}_coupon", "discount_amount_cents": cents, "discount_rate_cents": 0,
         "discount_percentage": 10 if kind == "percentage" else 0, "discount_type": kind,
         "discount_value_cents": cents, "cart_greater_than": 0} for oid, name, cost, cents, kind in REDEMPTION_OPTIONS])


def write_customers(w: FixtureWriter, world: World, cids: CustomerIds, stats: dict) -> None:
    p = world.people
    rng = ids.stream(world.seed, "yotpo")
    candidates = np.flatnonzero((p.market == US) & (stats["purchases"] > 0))
    pids = candidates[rng.random(len(candidates)) < LOYALTY_SHARE]
    n = len(pids)
    spend = stats["spend"][pids]
    earned = spend // 100 + SIGNUP_BONUS
    perks = np.minimum(earned // (PERK_COST + 200), rng.integers(0, 4, size=n))
    balance = earned - perks * PERK_COST
    tier = np.searchsorted([t[1] for t in TIERS], earned, side="right") - 1
    thresholds = np.array([t[1] for t in TIERS])
    next_need = np.where(tier < len(TIERS) - 1, thresholds[np.minimum(tier + 1, len(TIERS) - 1)] - earned, 0)
    joined = np.maximum(p.created_ms[pids], END_MS - 400 * MS_PER_DAY)
    last_purchase = stats["last_purchase"][pids]
    t = Frame(email=p.email(pids), first=ids.take(p.first_name, pids), last=ids.take(p.last_name, pids),
              third_party_id=cids.of_source(pids, cids.primary_source(pids)), earned=earned, balance=balance,
              perks=perks, spend=spend, purchases=stats["purchases"][pids], last_purchase_ms=last_purchase,
              last_seen_ms=np.minimum(last_purchase + rng.integers(0, 20 * MS_PER_DAY, size=n), END_MS),
              opt_in=~p.opted_out[pids], joined_ms=joined, tier=tier, next_need=next_need,
              birth_month=rng.integers(1, 13, size=n), birth_day=rng.integers(1, 29, size=n),
              code=pc.utf8_lower(ids.code36(pids, 7, world.seed * 13 + 7))).to_arrow()
    w.register("yotpo_people", t)
    tiers = "[" + ", ".join(f"'{name}'" for name, *_ in TIERS) + "]"
    w.write("yotpo/customers.jsonl", f"""
        SELECT {{'email': email, 'first_name': first, 'last_name': last, 'phone_number': NULL::VARCHAR,
                'third_party_id': third_party_id, 'pos_account_id': NULL::VARCHAR, 'has_store_account': true,
                'points_balance': balance, 'points_earned': earned, 'points_expire_at': NULL::VARCHAR,
                'next_points_expire_on': NULL::VARCHAR, 'next_points_expire_amount': NULL::INT,
                'total_spend_cents': spend, 'total_purchases': purchases, 'perks_redeemed': perks,
                'last_purchase_at': fmt_ms_z(last_purchase_ms), 'last_seen_at': fmt_ms_z(last_seen_ms),
                'credit_balance': '0.0', 'credit_balance_in_customer_currency': '0.0',
                'opt_in': opt_in, 'opted_in_at': CASE WHEN opt_in THEN fmt_ms_z(joined_ms) END,
                'birthday_month': birth_month, 'birth_day': birth_day, 'birthday_year': NULL::INT,
                'vip_tier_name': {tiers}[tier + 1], 'vip_tier_entry_date': fmt_ms_z(joined_ms),
                'vip_tier_expiration': NULL::VARCHAR,
                'vip_tier_actions_completed': {{'points_earned': earned, 'amount_spent_cents': spend,
                    'amount_spent_cents_in_customer_currency': spend, 'purchases_made': purchases,
                    'referrals_completed': 0, 'campaigns_completed': 1}},
                'vip_tier_upgrade_requirements': {{'points_needed': next_need, 'amount_cents_needed': next_need * 100,
                    'amount_cents_needed_in_customer_currency': next_need * 100, 'purchases_needed': 0,
                    'referrals_needed': 0, 'campaigns_needed': 0}},
                'vip_tier_maintenance_requirements': MAP {{}},
                'referral_code': {{'code': code, 'total_clicks': 0, 'total_shares': 0, 'orders': 0,
                    'amount_cents': 0, 'completed_referral_customers': []::VARCHAR[], 'expired': false}}}} AS rec
        FROM yotpo_people ORDER BY email""")
    w.unregister("yotpo_people")
