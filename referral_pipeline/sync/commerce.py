"""Commerce write-back, shared part: which commerce instances are destinations, and the values each of
their customer records gets (docs/sync.md "Commerce write-back").

A commerce destination is a source instance of the programs file (``ct``, ``bc``, ...): its customer
records (``identity.customer_map``, staged and not deleted) get the referral code, the loyalty points
and the referral reward status of their golden customer (``analytics.customers``); see
``sql/commerce_customer_values.sql`` for the reward-status rule. ``sync/commercetools.py`` and
``sync/bigcommerce.py`` push them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config.programs import Programs
from ..transform.runtime import load_sql
from .engine import SQL_PACKAGE

REWARD_STATUSES = ("pending", "on_hold", "approved", "issued", "canceled", "reversed", "not_eligible")


@dataclass(frozen=True)
class CommerceInstance:
    """One commerce source instance written back to: ``destination`` is its source id (``ct``)."""

    destination: str
    source_type: str      # commercetools | bigcommerce
    env_prefix: str


def commerce_instances(programs: Programs, source_type: str) -> list[CommerceInstance]:
    return [CommerceInstance(s.id, s.type, s.prefix) for s in programs.sources if s.type == source_type]


def define_customer_values(con) -> None:
    """Create the temp table macro ``commerce_customer_values(source_id)`` on this connection."""
    con.execute(load_sql(SQL_PACKAGE, "commerce_customer_values.sql"))
