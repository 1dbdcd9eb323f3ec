"""Friendbuy as a source: the seven analytics exports, landed raw and staged as referral events.

Instances come from the markets' ``friendbuy`` blocks (``Programs.friendbuy_instances()``: id
``fb``, or ``fb_<prefix>`` for a second account). Each export lands in
``raw.<instance>__<entity>`` and maps into ``staging.referral_events`` with one shared SQL file
(``transform/staging/sql/friendbuy_referral_events.sql``) parameterised by instance and kind.
"""
from __future__ import annotations

from importlib import resources

from ..clients.friendbuy import FriendbuyResource
from ..extract.friendbuy import REPORTS, make_extractor
from ..transform.staging.runner import StagingSpec
from . import EntityDef, SourcePlugin

STAGING_SQL = resources.files("referral_pipeline.transform.staging").joinpath(
    "sql/friendbuy_referral_events.sql").read_text()

DESCRIPTIONS = {
    "shares": "Friendbuy referral shares (advocate, channel, referral code).",
    "clicks": "Friendbuy valid clicks on referral links.",
    "account_sign_ups": "Friendbuy referral sign-ups (friend, advocate, referral code).",
    "purchases": "Friendbuy referral purchases (friend, advocate, orderId, amount, coupon).",
    "distributed_advocate_rewards": "Advocate rewards Friendbuy distributed (rejected ones are not exported).",
    "distributed_friend_incentives": "Friend incentives (coupon codes) Friendbuy distributed.",
    "widget_views": "Friendbuy widget views (advocate share and email capture widgets).",
}


def staging_specs(instance_id: str) -> list[StagingSpec]:
    """One spec per export into ``staging.referral_events``, scoped to this instance and kind."""
    return [StagingSpec(name=f"{instance_id}.{entity}", source=instance_id, entity=entity,
                        raw=f"raw.{instance_id}__{entity}", target="staging.referral_events", key="event_key",
                        sql=STAGING_SQL, params={"source": instance_id, "kind": kind},
                        delete_scope="source = $source AND kind = $kind")
            for entity, (_, kind) in REPORTS.items()]


PLUGIN = SourcePlugin(
    type="friendbuy",
    make_resource=FriendbuyResource.from_env_prefix,
    entities=[EntityDef(entity, make_extractor(entity), DESCRIPTIONS[entity]) for entity in REPORTS],
    staging_specs=staging_specs,
)
