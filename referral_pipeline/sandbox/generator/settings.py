"""Fixed parameters of the generated world: scales, the time window, markets, sources, programs.

Everything here is constant across seeds; the seed only changes which people, orders and
referrals are drawn. ``PROGRAMS_YAML`` is written verbatim to ``out_dir/programs.yaml`` and is
the content of the repository's default ``data/programs.yaml`` (contracts §5).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

UTC = timezone.utc
MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


# History of orders and referral activity (no wall-clock dependence anywhere).
START_MS = to_ms(datetime(2026, 4, 1, tzinfo=UTC))
END_MS = to_ms(datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
# Customers may have registered before the order history starts.
CUSTOMERS_FROM_MS = to_ms(datetime(2025, 1, 1, tzinfo=UTC))

GENERATOR_VERSION = 3   # 2: worlds carry sandbox.yaml (Yotpo plan rate); 3: Friendbuy plan


@dataclass(frozen=True)
class ScaleSpec:
    """Target sizes of one scale. ``chunk_people``: people whose orders are built and written
    together (bounds memory at ``large``)."""

    name: str
    people: int
    orders: int
    chunk_people: int
    advocate_rate: float = 0.05  # share of people who share a referral link
    friend_rate: float = 0.08    # share of people who buy after being referred


SCALES: dict[str, ScaleSpec] = {
    # tiny is for quick end-to-end tests: denser referral activity so most planted cases fit
    "tiny": ScaleSpec("tiny", 50, 250, 50, advocate_rate=0.1, friend_rate=0.3),
    "small": ScaleSpec("small", 2_000, 10_000, 2_000),
    "medium": ScaleSpec("medium", 100_000, 500_000, 100_000),
    "large": ScaleSpec("large", 1_000_000, 5_000_000, 100_000),
}

# Source instances (contracts §5 ``sources``); the index is the code used in numeric columns.
SOURCES = ("sf", "ct", "bc")
SF, CT, BC = 0, 1, 2


@dataclass(frozen=True)
class Market:
    """One market: currency, the source instances that feed it and its program rules."""

    id: str
    business_unit: str
    currency: str
    locales: tuple[str, ...]
    faker_locales: tuple[str, ...]
    countries: tuple[tuple[str, str], ...]  # (ISO-2, English name)
    campaign_id: str
    campaign_name: str
    uses_yotpo: bool
    min_order_value: int
    reward_amount: int
    incentive_amount: int  # friend incentive (fixed amount off, program currency)
    tax_rate: float
    shipping_cents: int
    free_shipping_from_cents: int
    people_share: float
    membership: tuple[float, float, float]  # P(person has a customer record) in sf, ct, bc
    ct_store: str
    ip_first_octets: tuple[int, ...]
    domains: tuple[tuple[str, float], ...]


MARKETS: tuple[Market, ...] = (
    Market("us", "acme-us", "USD", ("en-US",), ("en_US",), (("US", "United States"),),
           "camp-us", "Acme US Refer-a-Friend", True, 50, 20, 10, 0.0725, 599, 7500, 0.55,
           (0.45, 0.40, 0.45), "us", (73, 98, 174),
           (("gmail.com", 0.36), ("yahoo.com", 0.14), ("outlook.com", 0.12), ("hotmail.com", 0.08),
            ("icloud.com", 0.12), ("aol.com", 0.04), ("comcast.net", 0.06), ("proton.me", 0.08))),
    Market("uk", "acme-uk", "GBP", ("en-GB",), ("en_GB",), (("GB", "United Kingdom"),),
           "camp-uk", "Acme UK Refer-a-Friend", False, 40, 15, 10, 0.20, 499, 6000, 0.25,
           (0.55, 0.60, 0.0), "uk", (81, 86, 90),
           (("gmail.com", 0.34), ("hotmail.co.uk", 0.16), ("btinternet.com", 0.12), ("yahoo.co.uk", 0.12),
            ("outlook.com", 0.14), ("sky.com", 0.06), ("icloud.com", 0.06))),
    Market("eu", "acme-eu", "EUR", ("de-DE", "fr-FR", "nl-NL"), ("de_DE", "fr_FR", "nl_NL"),
           (("DE", "Germany"), ("FR", "France"), ("NL", "Netherlands")),
           "camp-eu", "Acme EU Freunde werben", False, 45, 20, 10, 0.19, 495, 7000, 0.20,
           (0.0, 1.0, 0.0), "eu", (84, 91, 212),
           (("gmail.com", 0.32), ("web.de", 0.14), ("gmx.de", 0.12), ("orange.fr", 0.10),
            ("outlook.com", 0.12), ("ziggo.nl", 0.08), ("free.fr", 0.06), ("t-online.de", 0.06))),
)
US, UK, EU = 0, 1, 2
CURRENCIES = tuple(m.currency for m in MARKETS)

PROGRAMS_YAML = """\
# Referral programs (contracts §5). Generated worlds of every scale and seed use exactly these ids.
defaults:
  attribution_window_days: 30
  return_window_days: 30
  advocate_monthly_cap: 10
  velocity: {advocate_per_24h: 5, ip_per_hour: 3}
sources:                                  # instances; id is the prefix of order_key
  - {id: sf, type: salesforce, env_prefix: SALESFORCE}
  - {id: ct, type: commercetools, env_prefix: CTP}
  - {id: bc, type: bigcommerce, env_prefix: BIGCOMMERCE}
markets:
  - id: us
    business_unit: acme-us
    currency: USD
    locales: [en-US]
    match:                                # which orders belong to this market
      - {source: sf, currency: USD}
      - {source: ct, store: us}
      - {source: bc}
    friendbuy: {campaign_id: camp-us, env_prefix: FRIENDBUY}
    yotpo: {env_prefix: YOTPO}
    min_order_value: 50
    advocate_reward: {amount: 20, currency: USD}
  - id: uk
    business_unit: acme-uk
    currency: GBP
    locales: [en-GB]
    match:
      - {source: sf, currency: GBP}
      - {source: ct, store: uk}
    friendbuy: {campaign_id: camp-uk, env_prefix: FRIENDBUY}
    min_order_value: 40
    advocate_reward: {amount: 15, currency: GBP}
  - id: eu
    business_unit: acme-eu
    currency: EUR
    locales: [de-DE, fr-FR, nl-NL]
    match:
      - {source: ct, store: eu}
    friendbuy: {campaign_id: camp-eu, env_prefix: FRIENDBUY}
    min_order_value: 45
    advocate_reward: {amount: 20, currency: EUR}
"""

# Program rules the planted cases are built against (must agree with PROGRAMS_YAML).
ATTRIBUTION_WINDOW_DAYS = 30
RETURN_WINDOW_DAYS = 30
ADVOCATE_MONTHLY_CAP = 10
VELOCITY_ADVOCATE_PER_24H = 5
VELOCITY_IP_PER_HOUR = 3

# Written to ``out_dir/sandbox.yaml`` (contracts §3.1): simulator settings of generated worlds. The
# generated accounts are on high-volume plans — Yotpo 200 requests/s instead of the documented
# default 5, Friendbuy 300/s (undocumented upstream; our client default is 10/s) — so a first
# `make run` of the `small` world (~6,500 Yotpo and ~12,000 Friendbuy writes) takes a minute, not
# an hour. The Friendbuy account ignores a repeated purchase orderId, and its campaign does not
# distribute advocate rewards by itself for the purchases we push (``auto_reward: false``): the
# world's distributed rewards are the generated history, so a second `make run` with no outside change
# is quiet. With auto_reward on, Friendbuy answers run 1's pushes by issuing rewards, which run 2 reads
# and writes back once as `issued` (tested in the e2e scenarios). The simulators announce these
# as YOTPO_RATE_LIMIT_PER_SECOND, FRIENDBUY_PUSH_RATE_LIMIT_PER_SECOND and FRIENDBUY_ORDER_ID_DEDUP
# (what an operator sets after agreeing them with the vendor); fixture worlds without this file keep
# the documented defaults.
SANDBOX_YAML = """\
# Simulator settings for this generated world (contracts §3.1); faults can be added with --faults.
yotpo:
  rate_limit: {requests_per_second: 200}
friendbuy:
  rate_limit: {requests_per_second: 300}
  options: {duplicate_purchase: ignore, auto_reward: false}
"""
