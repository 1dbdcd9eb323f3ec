"""People and their identities: names, emails and email variants, markets, source presence,
addresses, IPs, devices, consent and registration times.

A person is one human; the sources hold customer records of that person (``in_source``). The
base email is unique per person by construction (a per-person number in the local part), so two
people never share ``email_normalized`` or ``email_canonical`` unless a planted case says so.
Each customer record spells the email its own way (``VARIANT_*``): case and surrounding spaces
keep ``email_normalized``; gmail dots, ``+tags`` and ``googlemail.com`` keep only
``email_canonical`` (those records are "alias duplicates", counted in the manifest).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
import importlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ids
from .settings import CUSTOMERS_FROM_MS, END_MS, MARKETS, MS_PER_DAY, START_MS

# Email spelling of one customer record.
VARIANT_PLAIN, VARIANT_CAPITALIZED, VARIANT_UPPER_DOMAIN, VARIANT_SPACES, VARIANT_UPPER = 0, 1, 2, 3, 4
VARIANT_GMAIL_DOTS, VARIANT_GMAIL_TAG, VARIANT_GOOGLEMAIL = 5, 6, 7
ALIAS_VARIANTS = (VARIANT_GMAIL_DOTS, VARIANT_GMAIL_TAG, VARIANT_GOOGLEMAIL)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:129.0) Gecko/20100101 Firefox/129.0",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
    "AcmeShop/5.2.1 (iPhone; iOS 17.5; Scale/3.00)",
    "AcmeShop/5.2.0 (Android 14; Pixel 7)",
)
# Mobile-carrier addresses: shared by many people, never used for referral events.
MOBILE_IP_BASE = (172 << 24) | (56 << 16)
MOBILE_IP_SPAN = 1 << 18


@dataclass
class Pools:
    """Name and address pools drawn once (Faker data), concatenated over all locales, with the
    index range of each locale."""

    locales: tuple[str, ...]
    first: pa.Array
    first_ascii: pa.Array
    first_range: dict[str, tuple[int, int]]
    last: pa.Array
    last_ascii: pa.Array
    last_range: dict[str, tuple[int, int]]
    street: pa.Array
    city: pa.Array
    state: pa.Array
    postcode: pa.Array
    phone: pa.Array
    address_range: dict[str, tuple[int, int]]


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    return "".join(ch for ch in folded if ch.isalnum()) or "x"


def _unique(seq) -> list[str]:
    return list(dict.fromkeys(str(s) for s in seq))


ADDRESS_POOL = 240


def _state_of(fake, locale: str) -> str:
    for attr in ("state", "county", "region", "province"):
        fn = getattr(fake, attr, None)
        if fn is not None:
            try:
                return str(fn())
            except AttributeError:
                continue
    return ""


@lru_cache(maxsize=1)
def name_pools() -> Pools:
    """Pools from Faker's locale data (seeded with a constant: the pools are the same for every
    world; the world's seed decides who gets which entry)."""
    from faker import Faker

    locales = tuple(loc for m in MARKETS for loc in m.faker_locales)
    firsts, lasts, addr = [], [], {k: [] for k in ("street", "city", "state", "postcode", "phone")}
    first_range, last_range, address_range = {}, {}, {}
    for loc in locales:
        person = importlib.import_module(f"faker.providers.person.{loc}").Provider
        f = _unique(person.first_names)
        l = _unique(person.last_names)
        first_range[loc] = (len(firsts), len(f))
        last_range[loc] = (len(lasts), len(l))
        firsts += f
        lasts += l
        fake = Faker(loc)
        fake.seed_instance(20260401)
        address_range[loc] = (len(addr["street"]), ADDRESS_POOL)
        for _ in range(ADDRESS_POOL):
            addr["street"].append(fake.street_name())
            addr["city"].append(fake.city())
            addr["state"].append(_state_of(fake, loc))
            addr["postcode"].append(fake.postcode())
            addr["phone"].append(fake.phone_number())
    return Pools(
        locales=locales,
        first=pa.array(firsts), first_ascii=pa.array([_ascii(x) for x in firsts]), first_range=first_range,
        last=pa.array(lasts), last_ascii=pa.array([_ascii(x) for x in lasts]), last_range=last_range,
        street=pa.array(addr["street"]), city=pa.array(addr["city"]), state=pa.array(addr["state"]),
        postcode=pa.array(addr["postcode"]), phone=pa.array(addr["phone"]), address_range=address_range,
    )


@dataclass
class People:
    """Column arrays, one row per person (index = pid)."""

    n: int
    market: np.ndarray          # int8 market index
    country: np.ndarray         # int8 index into the market's countries
    locale: np.ndarray          # int16 index into Pools.locales
    first_name: pa.Array
    last_name: pa.Array
    email_local: pa.Array       # lower-case ASCII local part of the base email
    email_domain: pa.Array
    is_gmail: np.ndarray
    in_source: np.ndarray       # bool (n, 3): has a customer record in sf, ct, bc
    variant: np.ndarray         # int8 (n, 3): email spelling per source record
    home_ip: np.ndarray         # uint32, unique per person
    user_agent: np.ndarray      # int16 index into USER_AGENTS
    device: np.ndarray          # uint64 device fingerprint seed
    opted_out: np.ndarray       # bool: opted out of marketing email
    created_ms: np.ndarray      # int64: first registration anywhere
    n_orders: np.ndarray        # int32: planned number of orders
    street: pa.Array
    house_number: np.ndarray
    city: pa.Array
    state: pa.Array
    postcode: pa.Array
    phone: pa.Array
    extra: dict = field(default_factory=dict)

    def email(self, idx: np.ndarray | None = None) -> pa.Array:
        """Base (normalized) email of the given people."""
        local = self.email_local if idx is None else ids.take(self.email_local, idx)
        domain = self.email_domain if idx is None else ids.take(self.email_domain, idx)
        return pc.binary_join_element_wise(local, domain, "@")

    def set_strings(self, name: str, pids: np.ndarray, values: list[str]) -> None:
        """Overwrite one string column for a few people (planted cases)."""
        index = np.arange(self.n)
        index[np.asarray(pids, dtype=np.int64)] = self.n + np.arange(len(pids))
        column = pa.concat_arrays([getattr(self, name), pa.array(values, type=pa.string())])
        setattr(self, name, column.take(pa.array(index)))

    def full_name(self, idx: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(ids.take(self.first_name, idx), ids.take(self.last_name, idx), " ")


def email_number_modulus(n_people: int) -> int:
    modulus = 1000
    while modulus < 3 * max(n_people, 1):
        modulus *= 10
    return modulus


def _pick_domains(rng: np.random.Generator, market: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = sorted({d for m in MARKETS for d, _ in m.domains})
    out = np.empty(len(market), dtype=np.int16)
    for mi, m in enumerate(MARKETS):
        sel = np.flatnonzero(market == mi)
        weights = np.array([w for _, w in m.domains])
        choice = rng.choice(len(m.domains), size=len(sel), p=weights / weights.sum())
        lookup = np.array([names.index(d) for d, _ in m.domains])
        out[sel] = lookup[choice]
    return out, names


def _membership(rng: np.random.Generator, market: np.ndarray) -> np.ndarray:
    probs = np.array([m.membership for m in MARKETS])[market]
    member = rng.random((len(market), 3)) < probs
    empty = ~member.any(axis=1)
    if empty.any():  # at least one source: the most likely one for the market
        member[np.flatnonzero(empty), probs[empty].argmax(axis=1)] = True
    return member


def _variants(rng: np.random.Generator, n: int) -> np.ndarray:
    codes = np.array([VARIANT_PLAIN, VARIANT_CAPITALIZED, VARIANT_UPPER_DOMAIN, VARIANT_SPACES, VARIANT_UPPER])
    return codes[rng.choice(len(codes), size=(n, 3), p=[0.8, 0.08, 0.04, 0.05, 0.03])].astype(np.int8)


def _home_ips(seed: int, market: np.ndarray) -> np.ndarray:
    """Unique addresses: the market's first octets times a permuted 24-bit host number."""
    ips = np.zeros(len(market), dtype=np.uint32)
    for mi, m in enumerate(MARKETS):
        sel = np.flatnonzero(market == mi)
        rank = np.arange(len(sel))
        salt = int(ids.mix64(np.array([mi]), seed)[0] % np.uint64(1 << 24))
        host = ids.permute(rank, 1 << 24, salt) if len(sel) else rank
        octet = np.array(m.ip_first_octets)[rank % len(m.ip_first_octets)]
        host = np.where(host % 256 == 0, host + 1, host)  # avoid .0 hosts
        ips[sel] = (octet.astype(np.uint32) << 24) | (host.astype(np.uint32) & 0xFFFFFF)
    return ips


def _order_counts(rng: np.random.Generator, n: int, orders: int) -> np.ndarray:
    buyers = rng.random(n) >= 0.18
    mean_extra = max(orders / max(buyers.sum(), 1) - 1.0, 0.0)
    extra = rng.negative_binomial(2, 2 / (2 + mean_extra), size=n) if mean_extra > 0 else np.zeros(n, int)
    counts = np.where(buyers, 1 + np.minimum(extra, 80), 0)
    return counts.astype(np.int32)


def make_identities(rng: np.random.Generator, seed: int, market: np.ndarray, numbers: np.ndarray) -> dict:
    """Names, locale and email parts for people (or prospects) of the given markets; ``numbers``
    are the unique per-identity numbers of the email local parts."""
    pools = name_pools()
    n = len(market)
    country = np.zeros(n, dtype=np.int8)
    locale = np.zeros(n, dtype=np.int16)
    first_idx = np.zeros(n, dtype=np.int64)
    last_idx = np.zeros(n, dtype=np.int64)
    addr_idx = np.zeros(n, dtype=np.int64)
    for mi, m in enumerate(MARKETS):
        sel = np.flatnonzero(market == mi)
        c = rng.integers(0, len(m.faker_locales), size=len(sel))
        country[sel] = c
        for ci, loc in enumerate(m.faker_locales):
            rows = sel[c == ci]
            locale[rows] = pools.locales.index(loc)
            f0, fn = pools.first_range[loc]
            l0, ln = pools.last_range[loc]
            a0, an = pools.address_range[loc]
            first_idx[rows] = f0 + rng.integers(0, fn, size=len(rows))
            last_idx[rows] = l0 + rng.integers(0, ln, size=len(rows))
            addr_idx[rows] = a0 + rng.integers(0, an, size=len(rows))
    domain_idx, domain_names = _pick_domains(rng, market)
    sep = pa.array([".", "_", "", "."]).take(pa.array(rng.integers(0, 4, size=n)))
    local = pc.binary_join_element_wise(ids.take(pools.first_ascii, first_idx), sep,
                                        ids.take(pools.last_ascii, last_idx),
                                        pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), "")
    return {
        "country": country, "locale": locale,
        "first_name": ids.take(pools.first, first_idx), "last_name": ids.take(pools.last, last_idx),
        "email_local": local, "email_domain": ids.take(pa.array(domain_names), domain_idx),
        "is_gmail": np.array([d == "gmail.com" for d in domain_names])[domain_idx],
        "addr_idx": addr_idx,
    }


def build_people(seed: int, n: int, orders: int) -> People:
    rng = ids.stream(seed, "people")
    pools = name_pools()
    shares = np.array([m.people_share for m in MARKETS])
    market = rng.choice(len(MARKETS), size=n, p=shares / shares.sum()).astype(np.int8)
    numbers = ids.permute(np.arange(n), email_number_modulus(n), seed)
    who = make_identities(rng, seed, market, numbers)
    addr_idx = who["addr_idx"]
    return People(
        n=n, market=market, country=who["country"], locale=who["locale"],
        first_name=who["first_name"], last_name=who["last_name"],
        email_local=who["email_local"], email_domain=who["email_domain"], is_gmail=who["is_gmail"],
        in_source=_membership(rng, market), variant=_variants(rng, n), home_ip=_home_ips(seed, market),
        user_agent=rng.integers(0, len(USER_AGENTS), size=n).astype(np.int16),
        device=ids.mix64(np.arange(n), seed * 31 + 5), opted_out=rng.random(n) < 0.22,
        created_ms=_registration_times(rng, n), n_orders=_order_counts(rng, n, orders),
        street=ids.take(pools.street, addr_idx), house_number=rng.integers(1, 400, size=n),
        city=ids.take(pools.city, addr_idx), state=ids.take(pools.state, addr_idx),
        postcode=ids.take(pools.postcode, addr_idx), phone=ids.take(pools.phone, addr_idx),
    )


def _registration_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """40% registered before the history starts, the rest during it (whole seconds)."""
    before = rng.random(n) < 0.4
    early = rng.integers(CUSTOMERS_FROM_MS, START_MS, size=n)
    during = rng.integers(START_MS, END_MS - 3 * MS_PER_DAY, size=n)
    return (np.where(before, early, during) // 1000) * 1000


def plant_alias_duplicates(rng: np.random.Generator, people: People, exclude: np.ndarray) -> np.ndarray:
    """Give ~3% of gmail people with two or more records a dot/+tag/googlemail spelling on one
    of them (same ``email_canonical``, different ``email_normalized``). Returns their pids."""
    multi = people.in_source.sum(axis=1) >= 2
    candidates = np.flatnonzero(people.is_gmail & multi & ~exclude)
    chosen = candidates[rng.random(len(candidates)) < 0.03]
    last_source = 2 - np.argmax(people.in_source[chosen][:, ::-1], axis=1)
    people.variant[chosen, last_source] = rng.choice(ALIAS_VARIANTS, size=len(chosen))
    return chosen
