"""The product catalog shared by all stores: SKUs, names and prices per currency (minor units).

Prices end in .99 (or .49 for cheap items). ``CHEAP`` products are priced below every market's
``min_order_value`` so a one-item order of them is a planted ``BELOW_MIN_ORDER_VALUE`` case.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from . import ids

ADJECTIVES = ("Classic", "Everyday", "Premium", "Organic", "Vintage", "Urban", "Coastal", "Alpine",
              "Essential", "Heritage", "Lightweight", "Cozy", "Recycled", "Signature", "Studio")
MATERIALS = ("Cotton", "Linen", "Wool", "Leather", "Denim", "Canvas", "Bamboo", "Ceramic", "Steel", "Cork")
NOUNS = ("Tee", "Hoodie", "Tote Bag", "Sneakers", "Scarf", "Water Bottle", "Mug", "Backpack", "Cap",
         "Socks (3-pack)", "Notebook", "Throw Blanket", "Wallet", "Sunglasses", "Jacket", "Candle")
# Conversion of the USD list price to the other program currencies (then re-rounded to .99).
FX_FROM_USD = {"USD": 1.0, "GBP": 0.79, "EUR": 0.92, "CAD": 1.37}
N_PRODUCTS = 240
N_CHEAP = 12


@dataclass(frozen=True)
class Catalog:
    sku: pa.Array
    name: pa.Array
    price: dict[str, np.ndarray]  # currency -> int64 minor units per product
    weight: np.ndarray            # sampling weight of each product
    cheap: np.ndarray             # indexes of products priced below every min_order_value

    @property
    def n(self) -> int:
        return len(self.sku)


def _round_price(cents: np.ndarray) -> np.ndarray:
    whole = np.maximum(cents // 100, 1)
    return whole * 100 + 99


@lru_cache(maxsize=1)
def build_catalog() -> Catalog:
    """The same catalog for every world (sampling, not the catalog, depends on the seed)."""
    rng = ids.stream(0, "catalog")
    combos = [(a, m, n) for a in ADJECTIVES for m in MATERIALS for n in NOUNS]
    pick = rng.choice(len(combos), size=N_PRODUCTS, replace=False)
    names = [f"{combos[i][0]} {combos[i][1]} {combos[i][2]}" for i in pick]  # once per catalog
    usd = np.clip(rng.lognormal(mean=np.log(3400), sigma=0.55, size=N_PRODUCTS), 1500, 24000).astype(np.int64)
    usd[:N_CHEAP] = rng.integers(900, 1900, size=N_CHEAP)
    price = {cur: _round_price((usd * fx).astype(np.int64)) for cur, fx in FX_FROM_USD.items()}
    weight = rng.pareto(1.6, size=N_PRODUCTS) + 0.2
    weight[:N_CHEAP] *= 0.3
    skus = [f"ACM-{10000 + 37 * i:05d}" for i in range(N_PRODUCTS)]
    return Catalog(sku=pa.array(skus), name=pa.array(names), price=price,
                   weight=weight / weight.sum(), cheap=np.arange(N_CHEAP))
