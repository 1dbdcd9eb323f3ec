"""Query endpoints of the commercetools simulator: parameters, planning and paging.

``parse_query`` validates ``where`` / ``sort`` / ``limit`` / ``offset`` / ``withTotal`` /
``expand`` / ``var.<name>`` the way the API does (``QueryError`` carries the ``InvalidInput``
message). ``run_query`` answers with a ``PagedQueryResponse`` body.

Planning, so that paging never costs a full scan and sort per page:
- sorted by ``lastModifiedAt`` (then ``id``, same direction): the collection's incrementally
  maintained stamp index. A lower bound in the predicate (``lastModifiedAt > X``, ``>= X``, or the
  keyset form ``lastModifiedAt > X or (lastModifiedAt = X and id > Y)``) becomes the start
  position, an upper bound (``<`` / ``<=``) stops the walk;
- any other sort: an ordering cached by the store until the next write (``Collection.sorted_by``);
  a lower bound on the first sort field (e.g. ``id > "Y"`` with ``sort=id asc``) is a bisection;
- no sort: creation (insertion) order.
The remaining predicate is evaluated lazily while walking, stopping once the page is full (or,
with ``withTotal``, once the capped total is known).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from . import predicates as P
from .predicates import DATETIME_FIELDS

MAX_LIMIT = 500
MAX_OFFSET = 10_000
DEFAULT_LIMIT = 20
TOTAL_CAP = 10_000  # total is capped at the maximum offset once a predicate filters


class QueryError(ValueError):
    """An ``InvalidInput`` 400: ``message`` is the full API message."""


@dataclass
class SortKey:
    path: tuple[str, ...]
    descending: bool = False

    @property
    def text(self) -> str:
        return f"{'.'.join(self.path)} {'desc' if self.descending else 'asc'}"


@dataclass
class QuerySpec:
    predicate: Any = field(default_factory=P.TrueNode)
    has_where: bool = False
    sort: list[SortKey] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    with_total: bool = True
    expand: list[str] = field(default_factory=list)


# ---- parameters ---------------------------------------------------------------------------------
def parse_bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    raise QueryError(f"Malformed parameter: {name}: Invalid boolean value '{raw}'. Expected 'true' or 'false'.")


def parse_int(name: str, raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise QueryError(f"Malformed parameter: {name}: Invalid int value '{raw}'.") from None
    if not 0 <= value <= maximum:
        raise QueryError(f"Malformed parameter: {name}: The {name} parameter must be in the range of [0..{maximum}]")
    return value


def parse_sort(raw: str, schema: P.Schema) -> SortKey:
    parts = raw.split()
    if len(parts) != 2 or parts[1].lower() not in ("asc", "desc") or not parts[0]:
        raise QueryError(f"Malformed parameter: sort: Invalid sort expression '{raw}'. "
                         "Expected '<field> asc' or '<field> desc'.")
    path = tuple(parts[0].split("."))
    if any(not p for p in path):
        raise QueryError(f"Malformed parameter: sort: Invalid sort expression '{raw}'.")
    if schema.fields is not None and path[0] not in schema.fields:
        raise QueryError(f"Malformed parameter: sort: The field '{path[0]}' does not exist.")
    return SortKey(path, parts[1].lower() == "desc")


def parse_query(params: list[tuple[str, str]], schema: P.Schema) -> QuerySpec:
    """Validate the query parameters of a ``GET /{projectKey}/<resource>``."""
    single: dict[str, str] = {}
    wheres, sorts, expands = [], [], []
    variables: dict[str, list[str]] = {}
    for key, value in params:
        if key == "where":
            wheres.append(value)
        elif key == "sort":
            sorts.append(value)
        elif key == "expand":
            expands.append(value)
        elif key.startswith("var."):
            variables.setdefault(key[4:], []).append(value)
        else:
            single.setdefault(key, value)
    spec = QuerySpec(
        limit=parse_int("limit", single.get("limit"), DEFAULT_LIMIT, MAX_LIMIT),
        offset=parse_int("offset", single.get("offset"), 0, MAX_OFFSET),
        with_total=parse_bool("withTotal", single["withTotal"]) if "withTotal" in single else True,
        sort=[parse_sort(s, schema) for s in sorts],
        expand=expands,
        has_where=bool(wheres),
    )
    try:
        spec.predicate = P.parse_all(wheres, variables)
        P.validate(spec.predicate, schema)
    except P.PredicateError as exc:
        raise QueryError(f"Malformed parameter: where: {exc.detail}") from None
    return spec


# ---- sort values --------------------------------------------------------------------------------
def _path_value(rec: dict, path: tuple[str, ...]):
    value: Any = rec
    for part in path:
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value


def sort_value(leaf: str, value) -> tuple:
    """A total order over API values: date-times as instants (missing/unparseable first, as in
    the stamp index), numbers, then text; other missing values sort last."""
    if leaf in DATETIME_FIELDS:
        micros = P.instant_micros(value)
        return (1, micros if micros is not None else -1, "")
    if value is None:
        return (4, 0, "")
    if isinstance(value, bool):
        return (2, 0, str(value).lower())
    if isinstance(value, (int, float)):
        return (0, value, "")
    if isinstance(value, str):
        return (2, 0, value)
    return (3, 0, repr(value))


class _Desc:
    """Reverses the order of a sort value inside a tuple key."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return other.v < self.v

    def __eq__(self, other):
        return self.v == other.v


def sort_keyfunc(keys: list[SortKey]) -> Callable[[dict], tuple]:
    parts = [(k.path, k.path[-1], k.descending) for k in keys]

    def keyfunc(rec):
        out = []
        for path, leaf, desc in parts:
            v = sort_value(leaf, _path_value(rec, path))
            out.append(_Desc(v) if desc else v)
        return tuple(out)
    return keyfunc


def with_tiebreak(keys: list[SortKey], key_field: str) -> list[SortKey]:
    """Sorts end with the primary key (same direction as the first key) so pages are stable."""
    if any(k.path == (key_field,) for k in keys):
        return keys
    return keys + [SortKey((key_field,), keys[0].descending)]


# ---- planning -----------------------------------------------------------------------------------
@dataclass
class StampBounds:
    start: int | None = None        # micros
    inclusive: bool = True
    after_key: Any = None
    stop: int | None = None         # micros: walk ends past this
    stop_inclusive: bool = True


def _is_cmp(node, field_name: str, ops: tuple) -> bool:
    return isinstance(node, P.Compare) and node.field == field_name and node.op in ops


def _keyset_bound(node, stamp: str, key: str) -> tuple[int, str] | None:
    """``stamp > X or (stamp = X and key > Y)`` (either order) -> (micros of X, Y)."""
    if not isinstance(node, P.Or) or len(node.items) != 2:
        return None
    for gt, tie in (node.items, node.items[::-1]):
        if not (_is_cmp(gt, stamp, (">",)) and isinstance(tie, P.And) and len(tie.items) == 2):
            continue
        eq = next((i for i in tie.items if _is_cmp(i, stamp, ("=",))), None)
        after = next((i for i in tie.items if _is_cmp(i, key, (">",)) and i.value.kind == "string"), None)
        if eq is None or after is None:
            continue
        x, x_eq = gt.value.micros, eq.value.micros
        if x is not None and x == x_eq:
            return x, after.value.value
    return None


def plan_stamp_bounds(parts: list, stamp: str, key: str) -> tuple[StampBounds, list]:
    """Take the lower bound on ``stamp`` out of the conjuncts; note an upper bound."""
    bounds, residual = StampBounds(), []
    for node in parts:
        if bounds.start is None:
            ks = _keyset_bound(node, stamp, key)
            if ks is not None and ks[0] >= 0:
                bounds.start, bounds.after_key = ks
                continue
            if _is_cmp(node, stamp, (">", ">=")) and (node.value.micros or -1) >= 0:
                bounds.start, bounds.inclusive = node.value.micros, node.op == ">="
                continue
        if bounds.stop is None and _is_cmp(node, stamp, ("<", "<=")) and node.value.micros is not None:
            bounds.stop, bounds.stop_inclusive = node.value.micros, node.op == "<="
        residual.append(node)
    return bounds, residual


def _walk_stamp_index(coll, bounds: StampBounds) -> Iterator[dict]:
    it = coll.iter_by_stamp(bounds.start, after_key=bounds.after_key, inclusive=bounds.inclusive)
    if bounds.stop is None:
        return it
    return _until(it, coll, bounds.stop, bounds.stop_inclusive)


def _until(it: Iterator[dict], coll, stop: int, inclusive: bool) -> Iterator[dict]:
    for rec in it:
        micros = coll.stamp_micros(rec)
        if micros > stop or (micros == stop and not inclusive):
            return
        yield rec


def _walk_stamp_index_desc(coll, parts: list, stamp: str) -> Iterator[dict]:
    """Newest first. The store only walks the index backwards from the end, so an upper bound is
    a skip; a lower bound (``stamp > X`` / ``>= X``) ends the walk."""
    lower = next((n for n in parts if _is_cmp(n, stamp, (">", ">=")) and n.value.micros is not None), None)
    for rec in coll.iter_by_stamp(reverse=True):
        if lower is not None:
            micros = coll.stamp_micros(rec)
            if micros < lower.value.micros or (micros == lower.value.micros and lower.op == ">"):
                return
        yield rec


def _walk_sorted(coll, keys: list[SortKey], parts: list) -> Iterator[dict]:
    name = "sort:" + ",".join(k.text for k in keys)
    ordered = coll.sorted_by(name, sort_keyfunc(keys))
    first = keys[0]
    lo = 0
    if not first.descending and len(first.path) == 1:
        bound = next((n for n in parts if _is_cmp(n, first.path[0], (">", ">="))), None)
        if bound is not None:
            leaf = first.path[0]
            target = sort_value(leaf, bound.value.value)
            first_of = lambda rec: sort_value(leaf, rec.get(leaf))  # noqa: E731
            lo = (bisect.bisect_left if bound.op == ">=" else bisect.bisect_right)(ordered, target, key=first_of)
    return (ordered[i] for i in range(lo, len(ordered)))


def candidates(coll, spec: QuerySpec) -> tuple[Iterable[dict], Any]:
    """Records in the requested order, narrowed by the index, and the predicate still to apply."""
    stamp, key = coll.spec.stamp, coll.spec.key
    parts = P.conjuncts(spec.predicate)
    if not spec.sort:
        return coll.values(), spec.predicate
    keys = with_tiebreak(spec.sort, key)
    first = keys[0]
    if stamp and first.path == (stamp,) and len(keys) == 2 and keys[1].path == (key,) \
            and keys[1].descending == first.descending:
        if not first.descending:
            bounds, residual = plan_stamp_bounds(parts, stamp, key)
            return _walk_stamp_index(coll, bounds), P.conjoin(residual)
        return _walk_stamp_index_desc(coll, parts, stamp), spec.predicate
    return _walk_sorted(coll, keys, parts), spec.predicate


# ---- execution ----------------------------------------------------------------------------------
def collect(records: Iterable[dict], pred: Callable[[dict], bool] | None, offset: int, limit: int,
            count_to: int | None) -> tuple[list[dict], int]:
    """The page (after ``offset`` matches, at most ``limit``) and how many matches were seen.
    Walks until the page is full, or until ``count_to`` matches when a total is needed."""
    page: list[dict] = []
    matched = 0
    end = offset + limit
    stop_at = end if count_to is None else max(end, count_to)
    if stop_at == 0:
        return page, 0
    for rec in records:
        if pred is not None and not pred(rec):
            continue
        if offset <= matched < end:
            page.append(rec)
        matched += 1
        if matched >= stop_at:
            break
    return page, matched


def run_query(coll, spec: QuerySpec, expand: Callable[[dict, list[str]], dict] | None = None) -> dict:
    """A ``PagedQueryResponse`` body."""
    records, residual = candidates(coll, spec)
    pred = P.compile_predicate(residual)
    need_count = spec.with_total and spec.has_where
    page, matched = collect(records, pred, spec.offset, spec.limit, TOTAL_CAP if need_count else None)
    if expand is not None and spec.expand:
        page = [expand(rec, spec.expand) for rec in page]
    body: dict[str, Any] = {"limit": spec.limit, "offset": spec.offset, "count": len(page)}
    if spec.with_total:
        body["total"] = min(matched, TOTAL_CAP) if spec.has_where else len(coll)
    body["results"] = page
    return body


def exists(coll, spec: QuerySpec) -> bool:
    """``HEAD`` on a query endpoint: does any record match?"""
    pred = P.compile_predicate(spec.predicate)
    return any(pred is None or pred(rec) for rec in coll.values())
