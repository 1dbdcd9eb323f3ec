"""Planted malformed records (product §2.1): which records are bad and why.

About 0.5% of the customer and order records of each source are chosen among people with no
referral activity, and get one reason each, cycling through the reasons of the entity so every
reason appears at least once per source at ``small`` and above (at ``tiny`` each reason appears
once somewhere). The renderers of each system apply the reason to one field (see
``docs/sandbox/generator.md``); primary keys are never touched.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ids
from .settings import SOURCES

CUSTOMER_REASONS = ("missing_email", "malformed_email", "overlong_field", "invalid_utf8")
ORDER_REASONS = ("non_numeric_amount", "negative_amount", "non_finite_amount", "unknown_currency",
                 "unidentifiable_customer", "unparseable_date", "overlong_field", "invalid_utf8")
REASONS = {"customer": CUSTOMER_REASONS, "order": ORDER_REASONS}
RATE = 0.005
OVERLONG = 1200  # characters (the limit the pipeline enforces is 1,000)
BAD_EMAILS = ("{local}@@{domain}", "{local}.{domain}", "{local} @{domain}", "{local}@", "@{domain}")


def reason_code(entity: str, reason: str) -> int:
    return REASONS[entity].index(reason)


@dataclass
class MalformedPlanner:
    """Picks malformed records chunk by chunk; remembers how many of each it has planted."""

    seed: int
    every_reason_per_source: bool  # small and above
    counters: dict = field(default_factory=dict)   # (source, entity) -> next reason index
    planted: list = field(default_factory=list)    # manifest entries, filled by the renderers

    def _required(self, entity: str, source: int) -> int:
        reasons = REASONS[entity]
        if self.every_reason_per_source:
            return len(reasons)
        return sum(1 for i in range(len(reasons)) if i % len(SOURCES) == source)

    def pick(self, entity: str, source: int, chunk: int, eligible: np.ndarray) -> np.ndarray:
        """Reason code per row (-1: not malformed) for the rows of one source and entity."""
        reasons = REASONS[entity]
        out = np.full(len(eligible), -1, dtype=np.int8)
        pool = np.flatnonzero(eligible)
        if not len(pool):
            return out
        rng = ids.stream(self.seed, f"malformed-{entity}-{source}", chunk)
        count = int(rng.binomial(len(pool), RATE))
        key = (source, entity)
        if key not in self.counters:  # the first chunk with candidates carries the required set
            count = max(count, self._required(entity, source))
            self.counters[key] = 0
        count = min(count, len(pool))
        chosen = np.sort(rng.choice(pool, size=count, replace=False))
        start = self.counters[key]
        if self.every_reason_per_source:
            codes = (start + np.arange(count)) % len(reasons)
        else:  # tiny: this source's share of the reasons first, then cycle
            own = [i for i in range(len(reasons)) if i % len(SOURCES) == source] or list(range(len(reasons)))
            cycle = own + [i for i in range(len(reasons)) if i not in own]
            codes = np.array([cycle[(start + k) % len(cycle)] for k in range(count)], dtype=np.int64)
        self.counters[key] = start + count
        out[chosen] = codes
        return out

    def record(self, source: int, entity: str, collection: str, record_ids: list, codes: np.ndarray,
               fields: dict[str, str]) -> None:
        for rid, code in zip(record_ids, codes):
            reason = REASONS[entity][int(code)]
            self.planted.append({"source": SOURCES[source], "entity": collection, "id": rid,
                                 "reason": reason, "field": fields[reason]})
