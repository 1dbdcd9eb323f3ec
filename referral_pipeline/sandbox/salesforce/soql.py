"""SOQL subset: tokenizer, parser, binder (fields and literal types checked against the schema)
and compiled evaluation (filter predicate, ORDER BY sort, stamp-index range).

Supported: ``SELECT f1, f2 | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS
FIRST|LAST], ...] [LIMIT n] [OFFSET n]``. Conditions: ``= != <> < <= > >=``, ``[NOT] IN (...)``,
``LIKE``, ``AND`` / ``OR`` / ``NOT`` with parentheses (mixing AND and OR without parentheses is
an error, as in Salesforce), string / number / boolean / null literals, unquoted datetime
(``2024-01-01T00:00:00Z``, ``...000+0000``, ``...+02:00``) and date literals, and the date
literals TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n (UTC).

Errors are ``SoqlError`` with Salesforce's codes (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE,
INVALID_QUERY_FILTER_OPERATOR) and its message layout (the query line, a caret, "ERROR at
Row:r:Column:c", the reason).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import reduce
from typing import Any, Callable, Protocol

from .schema import ID_TYPES, NUMBER_TYPES, SOQL_TYPE_NAMES, FieldDef, normalize_id


class SoqlError(Exception):
    """A query Salesforce would refuse (HTTP 400 with ``[{"message", "errorCode"}]``)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# ---- tokens ----------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"""
   (?P<ws>\s+)
 | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
 | (?P<baddatetime>\d{4}-\d{2}-\d{2}T[\d:.]*)
 | (?P<date>\d{4}-\d{2}-\d{2})
 | (?P<number>-?(?:\d+(?:\.\d*)?|\.\d+))
 | (?P<string>'(?:[^'\\]|\\.)*')
 | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
 | (?P<op>!=|<>|<=|>=|=|<|>)
 | (?P<punct>[(),.:])
""", re.X)

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\",
            "%": "\\%", "_": "\\_"}  # \% and \_ stay escaped for LIKE


@dataclass(frozen=True)
class Token:
    kind: str   # ident, string, number, datetime, date, op, punct, eof
    text: str
    pos: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


def _located(soql: str, pos: int, reason: str) -> str:
    row = soql.count("\n", 0, pos) + 1
    line_start = soql.rfind("\n", 0, pos) + 1
    col = pos - line_start + 1
    line_end = soql.find("\n", pos)
    line = soql[line_start: line_end if line_end >= 0 else len(soql)]
    return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{reason}"


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN_RE.match(soql, pos)
        if m is None:
            raise SoqlError("MALFORMED_QUERY", _located(
                soql, pos, f"line 1:{pos} no viable alternative at character '{soql[pos]}'"))
        kind = m.lastgroup
        if kind == "baddatetime":
            end = m.end()
            bad = soql[end] if end < len(soql) else "<EOF>"
            raise SoqlError("MALFORMED_QUERY", _located(
                soql, end, f"line 1:{end} no viable alternative at character '{bad}'"))
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "<EOF>", len(soql)))
    return tokens


def _unquote(text: str) -> str:
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# ---- syntax tree -----------------------------------------------------------------------------
@dataclass
class FieldRef:
    path: str
    pos: int
    fdef: FieldDef | None = None  # set by the binder


@dataclass
class Literal:
    kind: str   # string, number, boolean, null, datetime, date, daterange
    value: Any
    text: str
    pos: int


@dataclass
class Comparison:
    field: FieldRef
    op: str                     # = != < <= > >= IN NOT IN LIKE
    value: Literal | list[Literal]


@dataclass
class BoolOp:
    op: str                     # AND / OR
    items: list


@dataclass
class Not:
    item: Any


@dataclass
class OrderItem:
    field: FieldRef
    desc: bool = False
    nulls_last: bool = False


@dataclass
class Query:
    sobject: str
    sobject_pos: int
    fields: list[FieldRef] = field(default_factory=list)
    count_only: bool = False
    where: Any = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    text: str = ""


_UNSUPPORTED = ("GROUP", "HAVING", "WITH", "USING", "FOR", "TYPEOF", "INCLUDES", "EXCLUDES")
_DATE_LITERALS = ("TODAY", "YESTERDAY", "TOMORROW", "LAST_N_DAYS", "NEXT_N_DAYS")


class _Parser:
    def __init__(self, soql: str):
        self.soql = soql
        self.tokens = tokenize(soql)
        self.i = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, tok: Token | None = None, reason: str | None = None) -> SoqlError:
        tok = tok or self.tok
        text = tok.text if tok.kind == "eof" else f"'{tok.text}'" if tok.kind != "string" else tok.text
        return SoqlError("MALFORMED_QUERY", _located(self.soql, tok.pos, reason or f"unexpected token: {text}"))

    def unsupported(self, tok: Token, what: str) -> SoqlError:
        reason = f"{what} is not supported by the sandbox's SOQL subset"
        return SoqlError("MALFORMED_QUERY", _located(self.soql, tok.pos, reason))

    def expect_kw(self, word: str) -> Token:
        if not self.tok.is_kw(word):
            raise self.error()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.text == ch):
            raise self.error()
        return self.advance()

    def at_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == ch

    # grammar
    def parse(self) -> Query:
        self.expect_kw("SELECT")
        fields, count_only = self.select_list()
        self.expect_kw("FROM")
        if self.tok.kind != "ident":
            raise self.error()
        obj = self.advance()
        q = Query(obj.text, obj.pos, fields, count_only, text=self.soql)
        if self.tok.is_kw("WHERE"):
            self.advance()
            q.where = self.condition()
        if self.tok.is_kw(*_UNSUPPORTED):
            raise self.unsupported(self.tok, self.tok.text.upper())
        if self.tok.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            q.order_by = self.order_list()
        if self.tok.is_kw("LIMIT"):
            self.advance()
            q.limit = self.integer()
        if self.tok.is_kw("OFFSET"):
            self.advance()
            q.offset = self.integer()
        if self.tok.is_kw(*_UNSUPPORTED):
            raise self.unsupported(self.tok, self.tok.text.upper())
        if self.tok.kind != "eof":
            raise self.error()
        return q

    def select_list(self) -> tuple[list[FieldRef], bool]:
        if self.tok.is_kw("COUNT") and self.tokens[self.i + 1].text == "(":
            start = self.advance()
            self.advance()
            if not self.at_punct(")"):
                raise self.unsupported(start, "COUNT(field) (aggregate queries)")
            self.advance()
            return [], True
        fields = [self.field_ref()]
        while self.at_punct(","):
            self.advance()
            fields.append(self.field_ref())
        return fields, False

    def field_ref(self) -> FieldRef:
        tok = self.tok
        if tok.kind == "punct" and tok.text == "(":
            raise self.unsupported(tok, "A relationship subquery")
        if tok.kind != "ident" or tok.is_kw("FROM", "WHERE", "SELECT"):
            raise self.error()
        if tok.is_kw("TYPEOF", "FIELDS") or (self.tokens[self.i + 1].text == "(" and not tok.is_kw("NOT")):
            raise self.unsupported(tok, f"{tok.text}(...)")
        self.advance()
        parts = [tok.text]
        while self.at_punct("."):
            self.advance()
            if self.tok.kind != "ident":
                raise self.error()
            parts.append(self.advance().text)
        return FieldRef(".".join(parts), tok.pos)

    def condition(self) -> Any:
        items = [self.unary()]
        joiner: Token | None = None
        while self.tok.is_kw("AND", "OR"):
            if joiner is not None and self.tok.text.upper() != joiner.text.upper():
                raise self.error()  # AND and OR mixed without parentheses
            joiner = self.advance()
            items.append(self.unary())
        return items[0] if joiner is None else BoolOp(joiner.text.upper(), items)

    def unary(self) -> Any:
        if self.tok.is_kw("NOT"):
            self.advance()
            return Not(self.unary())
        if self.at_punct("("):
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        ref = self.field_ref()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(ref, op, self.literal())
        if tok.is_kw("LIKE"):
            self.advance()
            return Comparison(ref, "LIKE", self.literal())
        negated = False
        if tok.is_kw("NOT"):
            self.advance()
            negated = True
            if not self.tok.is_kw("IN"):
                raise self.error()
        if self.tok.is_kw("IN"):
            self.advance()
            return Comparison(ref, "NOT IN" if negated else "IN", self.literal_list())
        if tok.is_kw("INCLUDES", "EXCLUDES"):
            raise self.unsupported(tok, tok.text.upper())
        raise self.error()

    def literal_list(self) -> list[Literal]:
        self.expect_punct("(")
        if self.tok.is_kw("SELECT"):
            raise self.unsupported(self.tok, "A semi-join subquery")
        values = [self.literal()]
        while self.at_punct(","):
            self.advance()
            values.append(self.literal())
        self.expect_punct(")")
        return values

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Literal("string", _unquote(tok.text), tok.text, tok.pos)
        if tok.kind == "number":
            self.advance()
            num = float(tok.text) if "." in tok.text else int(tok.text)
            return Literal("number", num, tok.text, tok.pos)
        if tok.kind == "datetime":
            self.advance()
            return Literal("datetime", datetime_micros(tok.text), tok.text, tok.pos)
        if tok.kind == "date":
            self.advance()
            try:
                datetime.strptime(tok.text, "%Y-%m-%d")
            except ValueError:
                raise self.error(tok) from None
            return Literal("date", tok.text, tok.text, tok.pos)
        if tok.is_kw("TRUE", "FALSE"):
            self.advance()
            return Literal("boolean", tok.text.upper() == "TRUE", tok.text, tok.pos)
        if tok.is_kw("NULL"):
            self.advance()
            return Literal("null", None, tok.text, tok.pos)
        if tok.is_kw(*_DATE_LITERALS):
            return self.date_literal()
        raise self.error()

    def date_literal(self) -> Literal:
        tok = self.advance()
        name = tok.text.upper()
        n = 0
        if name.endswith("_N_DAYS"):
            self.expect_punct(":")
            n = self.integer()
        return Literal("daterange", (name, n), tok.text, tok.pos)

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error()
        self.advance()
        return int(tok.text)

    def order_list(self) -> list[OrderItem]:
        items = [self.order_item()]
        while self.at_punct(","):
            self.advance()
            items.append(self.order_item())
        return items

    def order_item(self) -> OrderItem:
        item = OrderItem(self.field_ref())
        if self.tok.is_kw("ASC", "DESC"):
            item.desc = self.advance().text.upper() == "DESC"
        item.nulls_last = item.desc
        if self.tok.is_kw("NULLS"):
            self.advance()
            if not self.tok.is_kw("FIRST", "LAST"):
                raise self.error()
            item.nulls_last = self.advance().text.upper() == "LAST"
        return item


def parse(soql: str) -> Query:
    """Parse a SOQL statement (syntax only; ``bind`` checks it against the schema)."""
    if not soql or not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null")
    return _Parser(soql).parse()


# ---- values ------------------------------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MICRO = timedelta(microseconds=1)


def datetime_micros(value: Any) -> int | None:
    """Microseconds since the epoch of an ISO datetime string (``+0000``, ``Z`` or ``+hh:mm``),
    or None for anything else (stored values may be invalid; they never match)."""
    if type(value) is not str:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // _ONE_MICRO


_DATE_VALUE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _norm_text(v: Any) -> Any:
    if v is None:
        return None
    return v.casefold() if isinstance(v, str) else str(v).casefold()


def _norm_id(v: Any) -> Any:
    return v if isinstance(v, str) else None


def _norm_number(v: Any) -> Any:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _norm_bool(v: Any) -> Any:
    if v is None:
        return False  # checkboxes are never null in Salesforce
    return v if isinstance(v, bool) else None


def _norm_date(v: Any) -> Any:
    return v if isinstance(v, str) and _DATE_VALUE_RE.match(v) else None


def normalizer(fdef: FieldDef) -> Callable[[Any], Any]:
    """Maps a stored value to a comparable one (None: null or not comparable)."""
    t = fdef.type
    if t == "datetime":
        return datetime_micros
    if t == "date":
        return _norm_date
    if t == "boolean":
        return _norm_bool
    if t in NUMBER_TYPES:
        return _norm_number
    if t in ID_TYPES:
        return _norm_id
    return _norm_text


# ---- binding ---------------------------------------------------------------------------------------
class ObjectLike(Protocol):
    name: str

    def field(self, name: str) -> FieldDef | None: ...


class SchemaLike(Protocol):
    def object(self, name: str) -> ObjectLike | None: ...


@dataclass
class StampRange:
    """Bounds on the stamp field implied by the WHERE clause (None: unbounded)."""

    lo: int | None = None
    lo_inclusive: bool = True
    hi: int | None = None
    hi_inclusive: bool = True


@dataclass
class BoundQuery:
    """A query checked against the schema, with its filter and ordering compiled."""

    query: Query
    obj: Any
    fields: list[FieldDef]
    count_only: bool
    match: Callable[[dict], bool] | None
    order: list[tuple[FieldDef, bool, bool]]   # (field, desc, nulls_last)
    limit: int | None
    offset: int

    def stamp_range(self, stamp_field: str) -> StampRange | None:
        """Bounds on ``stamp_field`` that every matching record satisfies, if any."""
        if self.query.where is None:
            return None
        lo, hi = _bounds(self.query.where, stamp_field.lower())
        if lo is None and hi is None:
            return None
        return StampRange(lo[0] if lo else None, lo[1] if lo else True, hi[0] if hi else None, hi[1] if hi else True)

    def ordered_like_stamp_index(self, stamp_field: str, key_field: str) -> bool:
        """True when ORDER BY is satisfied by walking the (stamp, key) index forwards."""
        names = [(f.name.lower(), desc, nulls_last) for f, desc, nulls_last in self.order]
        if not names:
            return True
        wanted = [(stamp_field.lower(), False, False), (key_field.lower(), False, False)]
        return names == wanted[: len(names)]

    def sort(self, rows: list[dict]) -> None:
        """Sort in place by ORDER BY (stable, one pass per key from the last)."""
        for fdef, desc, nulls_last in reversed(self.order):
            rows.sort(key=_sort_key(fdef, desc, nulls_last), reverse=desc)


def _sort_key(fdef: FieldDef, desc: bool, nulls_last: bool) -> Callable[[dict], tuple]:
    norm = normalizer(fdef)
    name = fdef.name
    null_rank = 1 if nulls_last != desc else 0
    value_rank = 1 - null_rank

    def key(rec: dict) -> tuple:
        v = norm(rec.get(name))
        return (null_rank,) if v is None else (value_rank, v)
    return key


class _Binder:
    def __init__(self, query: Query, schema: SchemaLike, now: datetime):
        self.q, self.schema, self.now = query, schema, now

    def error(self, code: str, pos: int, reason: str) -> SoqlError:
        return SoqlError(code, _located(self.q.text, pos, reason))

    def bind(self) -> BoundQuery:
        q = self.q
        obj = self.schema.object(q.sobject)
        if obj is None:
            raise self.error("INVALID_TYPE", q.sobject_pos,
                             f"sObject type '{q.sobject}' is not supported. If you are attempting to use a custom "
                             "object, be sure to append the '__c' after the entity name. Please reference your "
                             "WSDL or the describe call for the appropriate names.")
        self.obj = obj
        fields: list[FieldDef] = []
        seen: set[str] = set()
        for ref in q.fields:
            fdef = self.resolve(ref)
            if fdef.name in seen:
                raise self.error("INVALID_FIELD", ref.pos, f"duplicate field selected: {fdef.name}")
            seen.add(fdef.name)
            fields.append(fdef)
        match = self.compile(q.where) if q.where is not None else None
        order = [(self.resolve(item.field), item.desc, item.nulls_last) for item in q.order_by]
        if q.offset is not None and q.offset > 2000:
            raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        return BoundQuery(q, obj, fields, q.count_only, match, order, q.limit, q.offset or 0)

    def resolve(self, ref: FieldRef) -> FieldDef:
        if "." in ref.path:
            rel = ref.path.split(".")[0]
            raise self.error("INVALID_FIELD", ref.pos,
                             f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a "
                             "custom relationship, be sure to append the '__r' after the custom relationship name. "
                             "Please reference your WSDL or the describe call for the appropriate names. "
                             "(The sandbox does not support relationship queries.)")
        fdef = self.obj.field(ref.path)
        if fdef is None:
            raise self.error("INVALID_FIELD", ref.pos,
                             f"No such column '{ref.path}' on entity '{self.obj.name}'. If you are attempting to use a "
                             "custom field, be sure to append the '__c' after the custom field name. Please reference "
                             "your WSDL or the describe call for the appropriate names.")
        ref.fdef = fdef
        return fdef

    # -- predicate compilation
    def compile(self, node: Any) -> Callable[[dict], bool]:
        if isinstance(node, BoolOp):
            parts = [self.compile(item) for item in node.items]
            if node.op == "AND":
                return reduce(lambda a, b: (lambda r: a(r) and b(r)), parts)
            return reduce(lambda a, b: (lambda r: a(r) or b(r)), parts)
        if isinstance(node, Not):
            inner = self.compile(node.item)
            return lambda r: not inner(r)
        return self.comparison(node)

    def comparison(self, cmp: Comparison) -> Callable[[dict], bool]:
        fdef = self.resolve(cmp.field)
        name, norm = fdef.name, normalizer(fdef)
        if cmp.op in ("IN", "NOT IN"):
            values = [self.literal_value(fdef, lit, cmp.op) for lit in cmp.value]
            want_null = any(v is None for v in values)
            wanted = frozenset(v for v in values if v is not None)
            if cmp.op == "IN":
                return lambda r: (v := r.get(name)) is None and want_null or norm(v) in wanted
            return lambda r: not ((v := r.get(name)) is None and want_null or norm(v) in wanted)
        if cmp.op == "LIKE":
            return self.like(fdef, cmp)
        lit = cmp.value
        if lit.kind == "daterange":
            return self.range_comparison(fdef, cmp.op, lit)
        value = self.literal_value(fdef, lit, cmp.op)
        return _compare(name, norm, cmp.op, value)

    def literal_value(self, fdef: FieldDef, lit: Literal, op: str) -> Any:
        if lit.kind == "null":
            return None
        t = fdef.type
        if lit.kind == "daterange":
            raise self.error("MALFORMED_QUERY", lit.pos, f"{lit.text} cannot be used with {op}")
        if t in ID_TYPES:
            ident = normalize_id(lit.value) if lit.kind == "string" else None
            if ident is None:
                raise self.error("INVALID_QUERY_FILTER_OPERATOR", lit.pos, f"invalid ID field: {lit.value}")
            return ident
        expected = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(
            t, "number" if t in NUMBER_TYPES else "string")
        if lit.kind != expected:
            quoted = expected == "string"
            raise self.error("INVALID_FIELD", lit.pos,
                             f"value of filter criterion for field '{fdef.name}' must be of type "
                             f"{SOQL_TYPE_NAMES.get(t, 'string')} and should {'' if quoted else 'not '}"
                             "be enclosed in quotes")
        if expected == "string":
            return lit.value.casefold()
        return lit.value

    def like(self, fdef: FieldDef, cmp: Comparison) -> Callable[[dict], bool]:
        lit = cmp.value
        if fdef.type in ID_TYPES or fdef.type in NUMBER_TYPES or fdef.type in ("boolean", "date", "datetime"):
            raise self.error("INVALID_FIELD", cmp.field.pos,
                             f"invalid operator on {fdef.type} field: LIKE ({fdef.name})")
        if lit.kind != "string":
            raise self.error("INVALID_FIELD", lit.pos, f"value of filter criterion for field '{fdef.name}' "
                             "must be of type string and should be enclosed in quotes")
        pattern = re.compile(_like_regex(lit.value), re.IGNORECASE | re.DOTALL)
        name = fdef.name
        return lambda r: isinstance(v := r.get(name), str) and pattern.fullmatch(v) is not None

    def range_comparison(self, fdef: FieldDef, op: str, lit: Literal) -> Callable[[dict], bool]:
        if fdef.type not in ("date", "datetime"):
            raise self.error("INVALID_FIELD", lit.pos, f"value of filter criterion for field '{fdef.name}' "
                             f"must be of type {SOQL_TYPE_NAMES.get(fdef.type, 'string')}")
        start, end = _date_range(lit.value, self.now)
        if fdef.type == "date":
            lo, hi = start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")
        else:
            lo, hi = (start - _EPOCH) // _ONE_MICRO, (end - _EPOCH) // _ONE_MICRO
        name, norm = fdef.name, normalizer(fdef)
        tests = {"=": lambda v: lo <= v < hi, "!=": lambda v: not lo <= v < hi, ">": lambda v: v >= hi,
                 ">=": lambda v: v >= lo, "<": lambda v: v < lo, "<=": lambda v: v < hi}
        test = tests[op]
        if op == "!=":
            return lambda r: (v := norm(r.get(name))) is None or test(v)
        return lambda r: (v := norm(r.get(name))) is not None and test(v)


def _compare(name: str, norm: Callable, op: str, value: Any) -> Callable[[dict], bool]:
    if value is None:
        if op == "=":
            return lambda r: r.get(name) is None
        if op == "!=":
            return lambda r: r.get(name) is not None
        return lambda r: False
    if op == "=":
        return lambda r: norm(r.get(name)) == value
    if op == "!=":
        return lambda r: norm(r.get(name)) != value  # null != 'x' is true in SOQL
    if op == "<":
        return lambda r: (v := norm(r.get(name))) is not None and v < value
    if op == "<=":
        return lambda r: (v := norm(r.get(name))) is not None and v <= value
    if op == ">":
        return lambda r: (v := norm(r.get(name))) is not None and v > value
    return lambda r: (v := norm(r.get(name))) is not None and v >= value


def _like_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


def _date_range(spec: tuple[str, int], now: datetime) -> tuple[datetime, datetime]:
    name, n = spec
    today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    return {"TODAY": (today, today + day), "YESTERDAY": (today - day, today),
            "TOMORROW": (today + day, today + 2 * day), "LAST_N_DAYS": (today - n * day, today + day),
            "NEXT_N_DAYS": (today + day, today + (n + 1) * day)}[name]


def _bounds(node: Any, stamp: str) -> tuple[tuple | None, tuple | None]:
    """(lower, upper) bounds ``(micros, inclusive)`` on the stamp field implied by ``node``."""
    if isinstance(node, Comparison):
        fdef = node.field.fdef
        if fdef is None or fdef.name.lower() != stamp or node.op in ("NOT IN", "LIKE", "!="):
            return None, None
        if node.op == "IN":
            values = [lit.value for lit in node.value if lit.kind == "datetime"]
            if len(values) != len(node.value):
                return None, None
            return (min(values), True), (max(values), True)
        lit = node.value
        if lit.kind != "datetime":
            return None, None
        v = lit.value
        return {"=": ((v, True), (v, True)), ">": ((v, False), None), ">=": ((v, True), None),
                "<": (None, (v, False)), "<=": (None, (v, True))}[node.op]
    if isinstance(node, BoolOp):
        parts = [_bounds(item, stamp) for item in node.items]
        if node.op == "AND":
            los = [p[0] for p in parts if p[0] is not None]
            his = [p[1] for p in parts if p[1] is not None]
            lo = max(los, key=lambda b: (b[0], not b[1])) if los else None
            hi = min(his, key=lambda b: (b[0], b[1])) if his else None
            return lo, hi
        if any(p[0] is None for p in parts):
            lo = None
        else:
            lo = min((p[0] for p in parts), key=lambda b: (b[0], not b[1]))
        if any(p[1] is None for p in parts):
            hi = None
        else:
            hi = max((p[1] for p in parts), key=lambda b: (b[0], b[1]))
        return lo, hi
    return None, None


def bind(query: Query, schema: SchemaLike, now: datetime | None = None) -> BoundQuery:
    """Check a parsed query against the schema and compile it."""
    return _Binder(query, schema, now or datetime.now(timezone.utc)).bind()


def compile_query(soql: str, schema: SchemaLike, now: datetime | None = None) -> BoundQuery:
    """``parse`` then ``bind``."""
    return bind(parse(soql), schema, now)
