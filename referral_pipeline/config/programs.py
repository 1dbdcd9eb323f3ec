"""The programs file (contracts §5): source instances, markets and their program rules.

``load_programs(path)`` validates the YAML into ``Programs``; ``Market.rules`` are the defaults
with the market's own overrides applied. A second BigCommerce store is one more ``sources`` entry
with its own ``env_prefix`` — configuration, not code.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

SourceType = Literal["salesforce", "commercetools", "bigcommerce"]
DEFAULT_ENV_PREFIX = {"salesforce": "SALESFORCE", "commercetools": "CTP", "bigcommerce": "BIGCOMMERCE",
                      "friendbuy": "FRIENDBUY", "yotpo": "YOTPO"}


class Velocity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    advocate_per_24h: int = 5
    ip_per_hour: int = 3


class Rules(BaseModel):
    """Program rules of a market (product §4); every key may be overridden per market."""

    model_config = ConfigDict(extra="forbid")
    attribution_window_days: int = 30
    return_window_days: int = 30
    advocate_monthly_cap: int = 10
    velocity: Velocity = Field(default_factory=Velocity)
    min_order_value: Decimal = Decimal("0")
    reconciliation_grace_days: int = 7


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Decimal
    currency: str


class SourceInstance(BaseModel):
    """One commerce/CRM system to extract from; ``id`` prefixes every ``order_key``."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: SourceType
    env_prefix: str | None = None
    page_size: int | None = None
    overlap_seconds: int = 300
    bulk_threshold: int = 10_000

    @property
    def prefix(self) -> str:
        return self.env_prefix or DEFAULT_ENV_PREFIX[self.type]


class FriendbuyInstance(BaseModel):
    """A Friendbuy account read as a source (analytics exports)."""

    id: str
    env_prefix: str = "FRIENDBUY"
    campaign_ids: list[str] = Field(default_factory=list)
    type: str = "friendbuy"
    page_size: int | None = None
    overlap_seconds: int = 3600

    @property
    def prefix(self) -> str:
        return self.env_prefix


class MarketMatch(BaseModel):
    """Which orders belong to a market: a source instance, optionally narrowed by currency or store."""

    model_config = ConfigDict(extra="forbid")
    source: str
    currency: str | None = None
    store: str | None = None


class FriendbuyTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign_id: str
    env_prefix: str = "FRIENDBUY"


class YotpoTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env_prefix: str = "YOTPO"


class Market(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    business_unit: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    locales: list[str] = Field(default_factory=list)
    match: list[MarketMatch]
    friendbuy: FriendbuyTarget | None = None
    yotpo: YotpoTarget | None = None
    advocate_reward: Money
    # per-market overrides of the defaults
    min_order_value: Decimal | None = None
    attribution_window_days: int | None = None
    return_window_days: int | None = None
    advocate_monthly_cap: int | None = None
    velocity: Velocity | None = None
    reconciliation_grace_days: int | None = None
    rules: Rules = Field(default_factory=Rules, exclude=True)


class Programs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: Rules = Field(default_factory=Rules)
    sources: list[SourceInstance]
    markets: list[Market]
    system_of_record_precedence: list[str] = Field(default_factory=lambda: ["salesforce", "commercetools", "bigcommerce"])

    @model_validator(mode="after")
    def _check(self) -> "Programs":
        ids = [s.id for s in self.sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate source ids in {ids}")
        mids = [m.id for m in self.markets]
        if len(set(mids)) != len(mids):
            raise ValueError(f"duplicate market ids in {mids}")
        seen: dict[tuple, str] = {}
        for m in self.markets:
            for rule in m.match:
                if rule.source not in ids:
                    raise ValueError(f"market {m.id}: match names unknown source {rule.source!r}")
                key = (rule.source, rule.currency, rule.store)
                if key in seen:
                    raise ValueError(f"markets {seen[key]} and {m.id} both match {key}")
                seen[key] = m.id
            overrides = {k: getattr(m, k) for k in Rules.model_fields if getattr(m, k, None) is not None}
            m.rules = self.defaults.model_copy(update=overrides)
        return self

    def friendbuy_instances(self) -> list["FriendbuyInstance"]:
        """One Friendbuy account per distinct env prefix among the markets (id ``fb``, or
        ``fb_<prefix>`` for a second account)."""
        by_prefix: dict[str, list[str]] = {}
        for m in self.markets:
            if m.friendbuy:
                by_prefix.setdefault(m.friendbuy.env_prefix, []).append(m.friendbuy.campaign_id)
        return [FriendbuyInstance(id="fb" if prefix == "FRIENDBUY" else f"fb_{prefix.lower()}", env_prefix=prefix,
                                  campaign_ids=campaigns) for prefix, campaigns in by_prefix.items()]

    def source(self, source_id: str) -> SourceInstance:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)

    def market(self, market_id: str) -> Market:
        for m in self.markets:
            if m.id == market_id:
                return m
        raise KeyError(market_id)


def load_programs(path: str | Path) -> Programs:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"programs file not found: {path} (set REFERRAL_CONFIG or make run CONFIG=...)") from None
    try:
        return Programs.model_validate(raw or {})
    except ValueError as exc:
        raise ValueError(f"{path}: invalid programs file:\n{exc}") from None
