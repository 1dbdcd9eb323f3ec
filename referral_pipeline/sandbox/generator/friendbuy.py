"""Friendbuy analytics exports (rows as ``GET /v1/analytics/<name>`` returns them, no ids):
``shares``, ``clicks``, ``account-sign-ups``, ``purchases``, ``widget-views``,
``distributed-friend-incentives`` and ``distributed-advocate-rewards``, all three campaigns in
one account. Rows are written in ``createdOn`` order. Customer ids are the ids of the person's
record in the commerce source Friendbuy's tracking saw (the advocate's first source, the
friend's only one); emails are the people's lower-case base addresses; coupon codes are
lower-case, as Friendbuy's code banks keep them. Sandbox-only addition: a friend's ``clicks`` row
carries the ``attributionId`` that the friend's order also carries (Salesforce
``Friendbuy_Attribution_Id__c``, commercetools ``fbAttributionId``), so the Friendbuy simulator can
resolve purchase events by attribution id; the real export has no such column.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ids
from .common import CustomerIds
from .frame import Frame
from .orders import World
from .promo import Promotions
from .referrals import SHARE_CHANNELS
from .settings import MARKETS, SOURCES
from .writer import FixtureWriter

SHOP_URL = "https://www.acme-shop.example"


def _advocate_columns(world: World, cids: CustomerIds, share_rows: np.ndarray) -> dict:
    s, p = world.refs.shares, world.people
    adv = s["advocate"][share_rows]
    return {"adv_id": cids.of_source(adv, cids.primary_source(adv)), "adv_email": p.email(adv),
            "adv_name": p.full_name(adv), "referral_code": ids.take(s["code"], share_rows),
            "channel": pa.array([SHARE_CHANNELS[c] for c in range(len(SHARE_CHANNELS))]).take(pa.array(s["channel"][share_rows].astype(np.int64))),
            "market": s["market"][share_rows]}


ADVOCATE_SQL = """'advocateName': adv_name, 'advocateEmail': adv_email, 'advocateCustomerId': adv_id"""
CAMPAIGN_SQL = """'campaignId': campaign_id(market), 'campaignName': campaign_name(market)"""


def write_shares(w: FixtureWriter, world: World, cids: CustomerIds) -> None:
    s = world.refs.shares
    rows = np.argsort(s["created_ms"], kind="stable")
    t = Frame(created_ms=s["created_ms"][rows], ip=s["ip"][rows], ua=s["ua"][rows],
              **_advocate_columns(world, cids, rows)).to_arrow()
    w.register("fb_shares", t)
    w.write("friendbuy/shares.jsonl", f"""
        SELECT {{'advocateCustomerId': adv_id, 'advocateEmail': adv_email, 'advocateName': adv_name,
                'channel': channel, 'referralCode': referral_code, {CAMPAIGN_SQL},
                'createdOn': fmt_ms_z(created_ms), 'userAgent': ua_text(ua), 'ipAddress': ip4(ip)}} AS rec
        FROM fb_shares""")
    w.unregister("fb_shares")


def write_clicks(w: FixtureWriter, world: World, cids: CustomerIds) -> None:
    f, c = world.refs.friends, world.refs.clicks
    share = np.concatenate([f["share"], c["share"]])
    created = np.concatenate([f["click_ms"], c["created_ms"]])
    ip = np.concatenate([f["ip"], c["ip"]])
    ua = np.concatenate([f["ua"], c["ua"]])
    attribution = pa.concat_arrays([
        pc.if_else(pa.array(f["attribution"]), ids.uuids(world.seed, "fbuy-attribution", np.arange(len(f))),
                   pa.nulls(len(f), pa.string())),
        pa.nulls(len(c), pa.string())])
    rows = np.argsort(created, kind="stable")
    t = Frame(created_ms=created[rows], ip=ip[rows], ua=ua[rows], attribution=attribution.take(pa.array(rows)),
              **_advocate_columns(world, cids, share[rows])).to_arrow()
    w.register("fb_clicks", t)
    w.write("friendbuy/clicks.jsonl", f"""
        SELECT {{{ADVOCATE_SQL}, 'channel': channel, 'referralCode': referral_code, {CAMPAIGN_SQL},
                'createdOn': fmt_ms_z(created_ms), 'userAgent': ua_text(ua), 'ipAddress': ip4(ip),
                'destinationUrl': '{SHOP_URL}/' || market_id(market) || '/?utm_source=friendbuy&utm_medium='
                                  || channel || '&referralCode=' || referral_code,
                'attributionId': attribution}} AS rec
        FROM fb_clicks""", null_keys=("attributionId",))
    w.unregister("fb_clicks")


def _friend_columns(world: World, cids: CustomerIds, friend_rows: np.ndarray) -> dict:
    f, p = world.refs.friends, world.people
    pid = f["pid"][friend_rows]
    return {"friend_id": cids.of_source(pid, f["source"][friend_rows]), "friend_email": p.email(pid),
            "friend_name": p.full_name(pid)}


def write_signups(w: FixtureWriter, world: World, cids: CustomerIds) -> None:
    f = world.refs.friends
    rows = np.flatnonzero(f["has_signup"])
    rows = rows[np.argsort(f["signup_ms"][rows], kind="stable")]
    t = Frame(created_ms=f["signup_ms"][rows], ip=f["ip"][rows], ua=f["ua"][rows],
              **_friend_columns(world, cids, rows), **_advocate_columns(world, cids, f["share"][rows])).to_arrow()
    w.register("fb_signups", t)
    w.write("friendbuy/account-sign-ups.jsonl", f"""
        SELECT {{'customerId': friend_id, 'email': friend_email, 'name': friend_name, {CAMPAIGN_SQL},
                'createdOn': fmt_ms_z(created_ms), 'userAgent': ua_text(ua), 'ipAddress': ip4(ip),
                {ADVOCATE_SQL}, 'newCustomer': true, 'referralCode': referral_code, 'channel': channel}} AS rec
        FROM fb_signups""")
    w.unregister("fb_signups")


def write_purchases(w: FixtureWriter, world: World, cids: CustomerIds, registry: Frame, registry_lines: Frame) -> None:
    """Referral purchases Friendbuy tracked: friends' first orders (when tracked) and planted
    orders that used a Friendbuy coupon. ``orderId`` is the shopper-visible number or the order key."""
    f, x, p = world.refs.friends, world.refs.extra_orders, world.people
    is_first = registry["friend"] >= 0
    tracked_first = is_first & f["in_purchases"][np.maximum(registry["friend"], 0)]
    coupon_extra = ~is_first & (x["coupon_friend"][np.maximum(registry["extra"], 0)] >= 0)
    rows = np.flatnonzero(tracked_first | coupon_extra)
    reg = registry.take(rows)
    referral = np.where(reg["friend"] >= 0, reg["friend"], x["coupon_friend"][np.maximum(reg["extra"], 0)])
    style = np.where(reg["friend"] >= 0, f["id_style"][np.maximum(reg["friend"], 0)], 0)
    pid = reg["pid"]
    order_key = pc.binary_join_element_wise(pa.array(np.array(SOURCES)[reg["source"]]), reg["order_id"], ":")
    t = Frame(reg_row=rows, created_ms=reg["created_ms"] + 5_000 + (rows % 50) * 1000, ip=reg["ip"],
              buyer_id=cids.of_source(pid, reg["source"]), buyer_email=p.email(pid), buyer_name=p.full_name(pid),
              new_customer=reg["friend"] >= 0, net=reg["net"], coupon=reg["coupon"],
              order_ref=pc.if_else(pa.array(style == 1), order_key, reg["number"]),
              **_advocate_columns(world, cids, f["share"][referral])).to_arrow()
    w.register("fb_purchases", t)
    w.register("fb_purchase_lines", registry_lines.to_arrow())
    w.write("friendbuy/purchases.jsonl", f"""
        WITH items AS (
            SELECT reg_row, list({{'sku': sku, 'name': name, 'quantity': qty, 'price': major(unit)}} ORDER BY line_no) AS products
            FROM fb_purchase_lines GROUP BY reg_row)
        SELECT {{'customerId': buyer_id, 'email': buyer_email, 'name': buyer_name, {CAMPAIGN_SQL},
                'createdOn': fmt_ms_z(created_ms), 'ipAddress': ip4(ip), {ADVOCATE_SQL},
                'newCustomer': new_customer, 'referralCode': referral_code, 'amount': major(net),
                'couponCode': NULLIF(lower(coupon), ''), 'products': items.products, 'orderId': order_ref}} AS rec
        FROM fb_purchases LEFT JOIN items USING (reg_row) ORDER BY created_ms, reg_row""")
    w.unregister("fb_purchases")
    w.unregister("fb_purchase_lines")


def write_widget_views(w: FixtureWriter, world: World, cids: CustomerIds) -> None:
    s, f, pr, p = world.refs.shares, world.refs.friends, world.refs.prospects, world.people
    rng = ids.stream(world.seed, "widget-views")
    adv = s["advocate"]
    n_s, n_p = len(s), len(pr)
    captured = f["incentive"]
    fr = np.flatnonzero(captured)
    t = Frame(
        created_ms=np.concatenate([s["created_ms"] - rng.integers(60_000, 1_800_000, size=n_s),
                                   f["click_ms"][fr] + 30_000, world.refs.clicks["created_ms"][pr["click"]] + 30_000]),
        customer_id=pa.concat_arrays([cids.of_source(adv, cids.primary_source(adv)),
                                      pa.nulls(len(fr), pa.string()), pa.nulls(n_p, pa.string())]),
        email=pa.concat_arrays([p.email(adv), p.email(f["pid"][fr]), pr["email"]]),
        market=np.concatenate([s["market"], f["market"][fr], pr["market"]]),
        ua=np.concatenate([s["ua"], f["ua"][fr], world.refs.clicks["ua"][pr["click"]]]),
        ip=np.concatenate([s["ip"], f["ip"][fr], world.refs.clicks["ip"][pr["click"]]]),
        advocate_widget=np.concatenate([np.ones(n_s, bool), np.zeros(len(fr) + n_p, bool)]),
    )
    order = np.argsort(t["created_ms"], kind="stable")
    w.register("fb_views", t.take(order).to_arrow())
    w.write("friendbuy/widget-views.jsonl", f"""
        SELECT {{'customerId': customer_id, 'email': email,
                'widgetName': CASE WHEN advocate_widget THEN 'Refer a Friend Overlay' ELSE 'Friend Landing Page' END,
                {CAMPAIGN_SQL}, 'createdOn': fmt_ms_z(created_ms), 'userAgent': ua_text(ua), 'ipAddress': ip4(ip),
                'widgetType': CASE WHEN advocate_widget THEN 'advocateShare' ELSE 'emailCapture' END}} AS rec
        FROM fb_views""")
    w.unregister("fb_views")


def write_friend_incentives(w: FixtureWriter, world: World, cids: CustomerIds, promos: Promotions) -> None:
    inc, f, pr = promos.incentives, world.refs.friends, world.refs.prospects
    fr = np.flatnonzero(inc["kind"] == 0)
    prr = np.flatnonzero(inc["kind"] == 1)
    friend_rows = inc["row"][fr]
    prospect_rows = inc["row"][prr]
    friend = _friend_columns(world, cids, friend_rows)
    order = np.concatenate([fr, prr])
    t = Frame(
        created_ms=inc["created_ms"][order], code=ids.take(inc["code"], order), market=inc["market"][order],
        friend_id=pa.concat_arrays([friend["friend_id"], pa.nulls(len(prr), pa.string())]),
        friend_email=pa.concat_arrays([friend["friend_email"], ids.take(pr["email"], prospect_rows)]),
        friend_name=pa.concat_arrays([friend["friend_name"],
                                      pc.binary_join_element_wise(ids.take(pr["first_name"], prospect_rows),
                                                                  ids.take(pr["last_name"], prospect_rows), " ")]),
        **{k: v for k, v in _advocate_columns(world, cids, inc["share"][order]).items() if k != "market"},
    )
    t["amount"] = np.array([m.incentive_amount for m in MARKETS])[t["market"]]
    rows = np.argsort(t["created_ms"], kind="stable")
    w.register("fb_incentives", t.take(rows).to_arrow())
    w.write("friendbuy/distributed-friend-incentives.jsonl", f"""
        SELECT {{'createdOn': fmt_ms_z(created_ms), 'incentiveType': 'Coupon Code', 'incentiveAmount': amount,
                'couponCode': lower(code), 'trigger': 'email_capture', {ADVOCATE_SQL},
                'referralCode': referral_code, 'channel': channel,
                'friendEmail': friend_email, 'friendName': friend_name, 'friendCustomerId': friend_id,
                {CAMPAIGN_SQL}}} AS rec
        FROM fb_incentives""")
    w.unregister("fb_incentives")


def write_advocate_rewards(w: FixtureWriter, world: World, cids: CustomerIds, promos: Promotions) -> None:
    r, f = promos.rewards, world.refs.friends
    rows = np.argsort(r["created_ms"], kind="stable")
    friend_rows = r["friend"][rows]
    t = Frame(created_ms=r["created_ms"][rows], reward_code=ids.take(r["code"], rows),
              amount=np.array([m.reward_amount for m in MARKETS])[r["market"][rows]],
              **_friend_columns(world, cids, friend_rows), **_advocate_columns(world, cids, f["share"][friend_rows])).to_arrow()
    w.register("fb_rewards", t)
    w.write("friendbuy/distributed-advocate-rewards.jsonl", f"""
        SELECT {{'createdOn': fmt_ms_z(created_ms), 'rewardType': 'Coupon Code', 'rewardAmount': amount,
                'couponCode': lower(reward_code), 'trigger': 'purchase', {ADVOCATE_SQL},
                'referralCode': referral_code, 'channel': channel,
                'friendEmail': friend_email, 'friendName': friend_name, 'friendCustomerId': friend_id,
                {CAMPAIGN_SQL}}} AS rec
        FROM fb_rewards""")
    w.unregister("fb_rewards")
