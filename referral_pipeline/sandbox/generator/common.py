"""Helpers shared by the system renderers: customer ids per source, customer record times, SQL
lookup macros for the small fixed lists (user agents, channels, markets, currencies, countries)
and the planted-bad text expressions."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ids
from .fraud import CURRENCY_CODES
from .malformed import BAD_EMAILS, OVERLONG
from .orders import CHANNELS
from .people import USER_AGENTS, People
from .settings import BC, CT, END_MS, MARKETS, SF
from .writer import FixtureWriter


def sql_list(values) -> str:
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]"


def install_lookups(w: FixtureWriter) -> None:
    """Macros mapping small integer codes to their text (1-based DuckDB lists)."""
    countries = [name for m in MARKETS for _, name in m.countries]
    isos = [iso for m in MARKETS for iso, _ in m.countries]
    offsets = np.cumsum([0] + [len(m.countries) for m in MARKETS])[:-1].tolist()
    w.con.execute(f"""
        CREATE OR REPLACE MACRO ua_text(i) AS {sql_list(USER_AGENTS)}[i + 1];
        CREATE OR REPLACE MACRO channel_text(i) AS {sql_list(CHANNELS)}[i + 1];
        CREATE OR REPLACE MACRO market_id(i) AS {sql_list(m.id for m in MARKETS)}[i + 1];
        CREATE OR REPLACE MACRO currency_code(i) AS {sql_list(CURRENCY_CODES)}[i + 1];
        CREATE OR REPLACE MACRO country_name(m, c) AS {sql_list(countries)}[{offsets}[m + 1] + c + 1];
        CREATE OR REPLACE MACRO country_iso(m, c) AS {sql_list(isos)}[{offsets}[m + 1] + c + 1];
        CREATE OR REPLACE MACRO campaign_id(i) AS {sql_list(m.campaign_id for m in MARKETS)}[i + 1];
        CREATE OR REPLACE MACRO campaign_name(i) AS {sql_list(m.campaign_name for m in MARKETS)}[i + 1];
        CREATE OR REPLACE MACRO store_key(i) AS {sql_list(m.ct_store for m in MARKETS)}[i + 1];
        CREATE OR REPLACE MACRO locale_of(m, c) AS {sql_list(loc for m in MARKETS for loc in m.locales)}[{offsets}[m + 1] + c + 1];
        CREATE OR REPLACE MACRO bad_email(loc, dom, k) AS CASE k % {len(BAD_EMAILS)}
            {" ".join(f"WHEN {i} THEN {_pattern_sql(p)}" for i, p in enumerate(BAD_EMAILS))} END;
        CREATE OR REPLACE MACRO overlong(s) AS left(repeat(s || ' ', {OVERLONG}), {OVERLONG});
        CREATE OR REPLACE MACRO bad_text(s) AS left(s, 2) || '{w.bad_text}' || s[4:];
    """)


def _pattern_sql(pattern: str) -> str:
    parts = []
    for chunk in pattern.replace("{local}", "\0L\0").replace("{domain}", "\0D\0").split("\0"):
        if chunk == "L":
            parts.append("loc")
        elif chunk == "D":
            parts.append("dom")
        elif chunk:
            parts.append("'" + chunk.replace("'", "''") + "'")
    return " || ".join(parts)


def record_times(seed: int, chunk: int, source: int, created: np.ndarray, salt: str) -> tuple[np.ndarray, np.ndarray]:
    """(created, modified) of customer records: registration plus up to 30 s; 40% edited later."""
    rng = ids.stream(seed, f"record-times-{salt}-{source}", chunk)
    n = len(created)
    c = created + rng.integers(0, 30_000, size=n)
    edited = rng.random(n) < 0.4
    later = c + (rng.random(n) * np.maximum(END_MS - c, 0)).astype(np.int64)
    return c, np.where(edited, later, c)


class CustomerIds:
    """Ids of each person's customer record per source (functions of pid and membership)."""

    def __init__(self, seed: int, people: People):
        self.seed = seed
        self.people = people
        self.rank = np.full((people.n, 3), -1, dtype=np.int64)
        for s in (SF, CT, BC):
            member = people.in_source[:, s]
            self.rank[member, s] = np.arange(int(member.sum()))

    def sf_contact(self, pids) -> pa.Array:
        return ids.sf_ids(self.seed, "003", self.rank[pids, SF])

    def sf_account(self, pids) -> pa.Array:
        return ids.sf_ids(self.seed, "001", self.rank[pids, SF] + 1)

    def sf_guest_account(self) -> str:
        return ids.sf_ids(self.seed, "001", np.array([0])).to_pylist()[0]

    def ct(self, pids) -> pa.Array:
        return ids.uuids(self.seed, "ct-customer", np.asarray(pids))

    def bc(self, pids) -> np.ndarray:
        return self.rank[pids, BC] + 1

    def primary_source(self, pids) -> np.ndarray:
        """The first source (sf, ct, bc) the person has a record in."""
        return np.argmax(self.people.in_source[pids], axis=1).astype(np.int8)

    def of_source(self, pids, source) -> pa.Array:
        """Customer id (as text) of each person's record in the given source (per row)."""
        pids = np.asarray(pids, dtype=np.int64)
        source = np.asarray(source)
        out = pa.array([""] * 0, pa.string())
        parts = {SF: self.sf_contact, CT: self.ct, BC: lambda p: pc.cast(pa.array(self.bc(p)), pa.string())}
        order = np.argsort(source, kind="stable")
        chunks = []
        for s in (SF, CT, BC):
            sel = order[source[order] == s]
            if len(sel):
                chunks.append((sel, parts[s](pids[sel])))
        if not chunks:
            return out
        values = pa.concat_arrays([c for _, c in chunks])
        positions = np.concatenate([sel for sel, _ in chunks])
        inverse = np.empty(len(positions), dtype=np.int64)
        inverse[positions] = np.arange(len(positions))
        return values.take(pa.array(inverse))
