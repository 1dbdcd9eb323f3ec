"""commercetools query predicates: parse the ``where`` language and compile it to fast evaluators.

Supported (docs.commercetools.com/api/predicates/query): comparisons ``= != <> < <= > >=``,
``and`` / ``or`` / ``not``, parentheses, ``in (...)`` / ``not in (...)``, ``is [not] defined``,
``is [not] empty``, ``contains [any|all]``, nested fields ``a(b(c = "x"))`` (any element when the
field holds an array), string / number / boolean literals and ``:name`` input variables (the
``var.<name>`` query parameters). Keywords are case-insensitive.

``parse`` returns an immutable tree (the planner in ``query.py`` inspects its top-level
conjuncts to pick an index); ``compile_predicate`` turns it into a ``record -> bool`` closure.
Errors are ``PredicateError`` with the detail the real API puts after ``Malformed parameter:
where:`` (a ``Syntax error while parsing 'where'. Invalid input ...`` with line/column and a caret,
or a semantic message such as ``The field 'x' does not exist.``).

Semantics where the API is silent (documented in docs/sandbox/commercetools.md): a comparison on a
missing or null field is false (``!=`` and ``not in`` too; use ``is not defined``); a comparison
against an array field is true when any element matches; fields whose name is a commercetools
date-time field (``createdAt``, ``lastModifiedAt``, ...) compare as instants, so the literal must
be a valid date/time.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

from ..core import stamps

Predicate = Callable[[dict], bool]

DATETIME_FIELDS = frozenset({
    "createdAt", "lastModifiedAt", "completedAt", "validFrom", "validUntil", "addedAt", "returnDate",
    "modifiedAt", "deletedAt", "expectedDelivery",
})


class PredicateError(ValueError):
    """A predicate the API would refuse; ``detail`` is the text after ``Malformed parameter: where:``."""

    def __init__(self, detail: str, kind: str = "semantic"):
        super().__init__(detail)
        self.detail = detail
        self.kind = kind


# ---- tree ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    value: Any            # str, int/float or bool
    kind: str             # "string" | "number" | "boolean"

    @property
    def number(self) -> float | int | None:
        if self.kind == "number":
            return self.value
        if self.kind == "string":
            try:
                return float(self.value) if any(c in self.value for c in ".eE") else int(self.value)
            except ValueError:
                return None
        return None

    @property
    def micros(self) -> int | None:
        return instant_micros(self.value) if self.kind == "string" else None


@dataclass(frozen=True)
class Compare:
    field: str
    op: str               # = != < <= > >=   (<> is normalised to !=)
    value: Literal


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple
    negated: bool = False


@dataclass(frozen=True)
class IsDefined:
    field: str
    negated: bool = False


@dataclass(frozen=True)
class IsEmpty:
    field: str
    negated: bool = False


@dataclass(frozen=True)
class Contains:
    field: str
    mode: str             # "one" | "any" | "all"
    values: tuple


@dataclass(frozen=True)
class Nested:
    field: str
    inner: Any


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class TrueNode:
    """The empty conjunction (no ``where``)."""


# ---- tokenizer ----------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<var>:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<punct>[(),])
""", re.VERBOSE)

KEYWORDS = {"and", "or", "not", "in", "is", "defined", "empty", "contains", "any", "all", "true", "false"}


@dataclass(frozen=True)
class Token:
    kind: str     # string number var op ident punct eof
    text: str
    pos: int      # 0-based offset in the predicate text


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            _syntax(text, pos, "a field name, literal, operator or parenthesis")
        kind = m.lastgroup
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _syntax(text: str, pos: int, expected: str):
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    what = f"Invalid input '{text[pos]}'" if pos < len(text) else "Unexpected end of input"
    caret_line = text.splitlines()[line - 1] if text else ""
    raise PredicateError(
        f"Syntax error while parsing 'where'. {what}, expected {expected} (line {line}, column {col}):\n"
        f"{caret_line}\n{' ' * (col - 1)}^", kind="syntax")


# ---- parser -------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, variables: dict[str, list[str]]):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.variables = variables

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text.lower() in words

    def expect_punct(self, ch: str, expected: str | None = None) -> None:
        if self.tok.kind == "punct" and self.tok.text == ch:
            self.advance()
            return
        self.fail(expected or f"'{ch}'")

    def fail(self, expected: str):
        _syntax(self.text, self.tok.pos, expected)

    # grammar
    def parse(self):
        node = self.or_expr()
        if self.tok.kind != "eof":
            self.fail("'and', 'or' or end of input")
        return node

    def or_expr(self):
        items = [self.and_expr()]
        while self.is_kw("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self):
        items = [self.unary()]
        while self.is_kw("and"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self):
        if self.is_kw("not") and not self._next_is_field_operator():
            self.advance()
            return Not(self.unary())
        return self.primary()

    def _next_is_field_operator(self) -> bool:
        """``not = "x"`` would compare a field named ``not``; ``not (..)`` / ``not a = 1`` negate."""
        nxt = self.tokens[self.i + 1]
        return nxt.kind == "op"

    def primary(self):
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            node = self.or_expr()
            self.expect_punct(")", "')', 'and' or 'or'")
            return node
        if self.tok.kind != "ident" or self.tok.text.lower() in ("and", "or"):
            self.fail("a field name, 'not' or '('")
        return self.field_expr(self.advance().text)

    def field_expr(self, field: str):
        tok = self.tok
        if tok.kind == "punct" and tok.text == "(":
            self.advance()
            inner = self.or_expr()
            self.expect_punct(")", "')', 'and' or 'or'")
            return Nested(field, inner)
        if tok.kind == "op":
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            return Compare(field, op, self.literal())
        if self.is_kw("in"):
            self.advance()
            return InList(field, self.literal_list())
        if self.is_kw("not"):
            self.advance()
            if not self.is_kw("in"):
                self.fail("'in'")
            self.advance()
            return InList(field, self.literal_list(), negated=True)
        if self.is_kw("is"):
            self.advance()
            negated = False
            if self.is_kw("not"):
                self.advance()
                negated = True
            if self.is_kw("defined"):
                self.advance()
                return IsDefined(field, negated)
            if self.is_kw("empty"):
                self.advance()
                return IsEmpty(field, negated)
            self.fail("'defined', 'empty' or 'not'")
        if self.is_kw("contains"):
            self.advance()
            if self.is_kw("any", "all"):
                mode = self.advance().text.lower()
                return Contains(field, mode, self.literal_list())
            return Contains(field, "one", (self.literal(),))
        self.fail("'(', a comparison operator, 'in', 'not in', 'is' or 'contains'")

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Literal(_unescape(tok.text[1:-1]), "string")
        if tok.kind == "number":
            self.advance()
            text = tok.text
            return Literal(float(text) if any(c in text for c in ".eE") else int(text), "number")
        if tok.kind == "ident" and tok.text.lower() in ("true", "false"):
            self.advance()
            return Literal(tok.text.lower() == "true", "boolean")
        if tok.kind == "var":
            self.advance()
            values = self.variable(tok.text[1:])
            if len(values) != 1:
                raise PredicateError(f"The predicate variable '{tok.text[1:]}' must have exactly one value here.")
            return Literal(values[0], "string")
        self.fail("a string, number, boolean or :variable")

    def literal_list(self) -> tuple:
        if self.tok.kind == "var":
            name = self.advance().text[1:]
            return tuple(Literal(v, "string") for v in self.variable(name))
        self.expect_punct("(", "'(' or a :variable")
        values = [self.literal()]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.advance()
            values.append(self.literal())
        self.expect_punct(")", "',' or ')'")
        return tuple(values)

    def variable(self, name: str) -> list[str]:
        if name not in self.variables:
            raise PredicateError(f"Missing value for predicate variable '{name}' (pass it as 'var.{name}').")
        return self.variables[name]


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(text: str, variables: dict[str, list[str]] | None = None):
    """The tree of one predicate (one ``where`` parameter)."""
    if not text or not text.strip():
        _syntax(text or "", 0, "a predicate")
    return _Parser(text, variables or {}).parse()


def parse_all(texts: Iterable[str], variables: dict[str, list[str]] | None = None):
    """Several ``where`` parameters, AND-ed (``TrueNode`` when there are none)."""
    nodes = [parse(t, variables) for t in texts]
    if not nodes:
        return TrueNode()
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def conjuncts(node) -> list:
    """The top-level AND-ed parts of a predicate."""
    if isinstance(node, TrueNode):
        return []
    if isinstance(node, And):
        out = []
        for item in node.items:
            out.extend(conjuncts(item))
        return out
    return [node]


def conjoin(parts: list):
    if not parts:
        return TrueNode()
    return parts[0] if len(parts) == 1 else And(tuple(parts))


# ---- validation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schema:
    """What a resource allows at the top level of a predicate: field names (None: anything) and
    enum-typed fields (field -> (enum type name, allowed values))."""

    fields: frozenset | None = None
    enums: dict | None = None


def validate(node, schema: Schema) -> None:
    """Refuse unknown top-level fields, bad enum values and unparseable date-time literals."""
    for field, leaf in _top_level_fields(node):
        if schema.fields is not None and field not in schema.fields:
            raise PredicateError(f"The field '{field}' does not exist.")
        if schema.enums and field in schema.enums and leaf is not None:
            type_name, allowed = schema.enums[field]
            for lit in _literals(leaf):
                if lit.value not in allowed:
                    raise PredicateError(f"Invalid enum value for {type_name}: {lit.value}")
    _check_datetimes(node)


def _top_level_fields(node):
    if isinstance(node, (And, Or)):
        for item in node.items:
            yield from _top_level_fields(item)
    elif isinstance(node, Not):
        yield from _top_level_fields(node.item)
    elif isinstance(node, Nested):
        yield node.field, None
    elif isinstance(node, (Compare, InList, Contains)):
        yield node.field, node
    elif isinstance(node, (IsDefined, IsEmpty)):
        yield node.field, None


def _literals(node) -> tuple:
    if isinstance(node, Compare):
        return (node.value,)
    return tuple(node.values)


def _check_datetimes(node) -> None:
    if isinstance(node, (And, Or)):
        for item in node.items:
            _check_datetimes(item)
    elif isinstance(node, Not):
        _check_datetimes(node.item)
    elif isinstance(node, Nested):
        _check_datetimes(node.inner)
    elif isinstance(node, (Compare, InList, Contains)) and node.field in DATETIME_FIELDS:
        for lit in _literals(node):
            if lit.micros is None:
                raise PredicateError(f"Invalid DateTime value for field '{node.field}': {lit.value!r}.")


# ---- evaluation ---------------------------------------------------------------------------------
_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_MISSING = object()


@lru_cache(maxsize=1 << 17)
def instant_micros(value) -> int | None:
    """Microseconds since the epoch of a date/time string (None when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        return stamps.to_micros(value)
    except (ValueError, TypeError, OverflowError):
        return None


def compile_predicate(node) -> Predicate | None:
    """A fast ``record -> bool``; None for the always-true predicate."""
    if isinstance(node, TrueNode):
        return None
    return _compile(node)


def _compile(node) -> Predicate:
    if isinstance(node, And):
        parts = [_compile(i) for i in node.items]
        return lambda rec: all(p(rec) for p in parts)
    if isinstance(node, Or):
        parts = [_compile(i) for i in node.items]
        return lambda rec: any(p(rec) for p in parts)
    if isinstance(node, Not):
        inner = _compile(node.item)
        return lambda rec: not inner(rec)
    if isinstance(node, Nested):
        return _compile_nested(node)
    if isinstance(node, Compare):
        return _compile_compare(node)
    if isinstance(node, InList):
        return _compile_in(node)
    if isinstance(node, IsDefined):
        return _compile_defined(node)
    if isinstance(node, IsEmpty):
        return _compile_empty(node)
    if isinstance(node, Contains):
        return _compile_contains(node)
    raise TypeError(f"unknown predicate node {node!r}")


def _get(rec, field):
    return rec.get(field, _MISSING) if type(rec) is dict else _MISSING


def _compile_nested(node: Nested) -> Predicate:
    inner, field = _compile(node.inner), node.field

    def pred(rec):
        sub = _get(rec, field)
        if type(sub) is dict:
            return inner(sub)
        if type(sub) is list:
            return any(type(e) is dict and inner(e) for e in sub)
        return False
    return pred


def value_matcher(field: str, op: str, lit: Literal) -> Callable[[Any], bool]:
    """``value -> bool`` for one scalar value of ``field`` against a literal."""
    opf = _OPS[op]
    if field in DATETIME_FIELDS:
        target = lit.micros

        def match_dt(v):
            m = instant_micros(v)
            return m is not None and opf(m, target)
        return match_dt
    if lit.kind == "boolean":
        if op not in ("=", "!="):
            return lambda v: False
        return lambda v: type(v) is bool and opf(v, lit.value)
    number, text = lit.number, lit.value if lit.kind == "string" else None

    def match(v):
        tv = type(v)
        if tv is str:
            return text is not None and opf(v, text)
        if tv in (int, float):
            return number is not None and opf(v, number)
        return False
    return match


def _any_value(field: str, match: Callable[[Any], bool]) -> Predicate:
    def pred(rec):
        v = _get(rec, field)
        if v is _MISSING or v is None:
            return False
        if type(v) is list:
            return any(match(e) for e in v)
        return match(v)
    return pred


def _compile_compare(node: Compare) -> Predicate:
    return _any_value(node.field, value_matcher(node.field, node.op, node.value))


def _compile_in(node: InList) -> Predicate:
    matchers = [value_matcher(node.field, "=", lit) for lit in node.values]
    if node.field not in DATETIME_FIELDS and all(lit.kind == "string" for lit in node.values):
        allowed = frozenset(lit.value for lit in node.values)
        one = lambda v: type(v) is str and v in allowed  # noqa: E731 - hot path, set lookup
    else:
        one = lambda v: any(m(v) for m in matchers)  # noqa: E731
    if not node.negated:
        return _any_value(node.field, one)
    field = node.field

    def pred(rec):
        v = _get(rec, field)
        if v is _MISSING or v is None:
            return False
        values = v if type(v) is list else [v]
        return not any(one(e) for e in values)
    return pred


def _compile_defined(node: IsDefined) -> Predicate:
    field, negated = node.field, node.negated
    return lambda rec: (_get(rec, field) not in (_MISSING, None)) != negated


def _compile_empty(node: IsEmpty) -> Predicate:
    field, negated = node.field, node.negated

    def pred(rec):
        v = _get(rec, field)
        empty = v is _MISSING or v is None or (isinstance(v, (list, dict, str)) and len(v) == 0)
        return empty != negated
    return pred


def _compile_contains(node: Contains) -> Predicate:
    field = node.field
    matchers = [value_matcher(field, "=", lit) for lit in node.values]
    combine = all if node.mode == "all" else any

    def pred(rec):
        v = _get(rec, field)
        if type(v) is not list:
            return False
        return combine(any(m(e) for e in v) for m in matchers)
    return pred
