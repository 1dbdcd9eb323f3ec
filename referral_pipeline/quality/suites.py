"""Data-quality suites (product §9) as data: one ``Suite`` per table.

Two kinds of expectations:

* **row-level** (``RowExpectation``): a Great Expectations expectation evaluated on the rows that
  changed since the last validation (the *delta*, see ``runner.py``). Everything that can be judged
  from one row alone lives here: not null, well-formed email, non-negative amount, value in an
  allowed set, key format, JSON parseable. A ``Derived`` column is a SQL expression over the row,
  computed by DuckDB while reading the delta, so GX can judge a combination of columns
  (``rule || ':' || severity``) with a plain set expectation.
* **table-level** (``TableExpectation``): needs the whole table (or another table) and runs as one
  set-based DuckDB query returning the offending rows: uniqueness of keys, ledger ``seq``
  contiguity, rewards agreeing with their ledger, references to rows of other tables.

Value sets written ``"$currencies"`` / ``"$markets"`` are resolved at run time (ISO 4217 codes from
``staging.currencies``; market ids from the programs file). No Dagster and no GX import here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

ORDER_STATUSES = ("placed", "paid", "shipped", "completed", "cancelled", "refunded", "partially_refunded",
                  "declined", "incomplete")
REWARD_STATUSES = ("pending", "on_hold", "approved", "issued", "canceled", "reversed", "not_eligible")
ATTRIBUTION_METHODS = ("coupon", "friendbuy", "referral_code", "signup")
FRAUD_RULE_SEVERITY = {"SELF_REFERRAL": "reject", "SAME_IP_AS_ADVOCATE": "hold", "DUPLICATE_IDENTITY": "hold",
                       "VELOCITY_ADVOCATE": "hold", "VELOCITY_IP": "hold", "COUPON_REUSE": "hold"}
FRAUD_SUBJECT_TYPES = ("signup", "order")
REFERRAL_EVENT_KINDS = ("share", "click", "signup", "purchase", "advocate_reward", "friend_incentive", "widget_view")
REFUND_KINDS = ("refund", "cancellation")
SOURCE_TYPES = ("salesforce", "commercetools", "bigcommerce")

# A normalized email (lower-cased, trimmed): local@domain.tld, no blanks, no list separators.
EMAIL_NORMALIZED_RE = r"^[^@\s,;<>()A-Z]+@[^@\s,;<>()A-Z]+\.[a-z]{2,}$"
# A golden-record email as a destination receives it (any case).
EMAIL_RE = r"^[^@\s,;<>()]+@[^@\s,;<>()]+\.[A-Za-z]{2,}$"
SOURCE_KEY_RE = r"^[a-z][a-z0-9_]*:.+$"            # '<source instance id>:<source id>'
CUSTOMER_KEY_RE = r"^cus_[0-9a-f]{16}$"            # docs/transforms.md (identity)
REWARD_KEY_RE = r"^rwd_[0-9a-f]{16}$"              # docs/transforms.md (rewards)

CURRENCIES = "$currencies"
MARKETS = "$markets"


@dataclass(frozen=True)
class Derived:
    """A column computed by DuckDB while reading the delta: ``sql`` is an expression over the row."""

    alias: str
    sql: str
    requires: tuple[str, ...]  # table columns the expression reads


@dataclass(frozen=True)
class RowExpectation:
    name: str                       # stable id, unique within the suite
    gx_type: str                    # GX expectation class name
    column: str                     # table column or Derived alias
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class TableExpectation:
    """A whole-table check: ``sql`` selects the offending rows (first column = the row's key)."""

    name: str
    description: str
    sql: str | None = None            # inline SQL (generated, identifiers only)
    sql_file: str | None = None       # or a file in ``quality/sql/``
    requires: tuple[str, ...] = ()    # other tables it reads; skipped while one is missing
    unique: tuple[str, ...] = ()      # uniqueness of these columns (SQL generated)


@dataclass(frozen=True)
class Suite:
    table: str                               # schema.table
    key: tuple[str, ...]                     # the row key (used for failing-row bookkeeping)
    blocking: bool                           # ERROR + blocking asset check (inputs of pushes)
    row: tuple[RowExpectation, ...]
    table_checks: tuple[TableExpectation, ...] = ()
    derived: tuple[Derived, ...] = ()
    watermark_candidates: tuple[str, ...] = ("load_seq",)  # monotonic write-sequence columns, first present wins
    description: str = ""

    @property
    def asset_path(self) -> tuple[str, ...]:
        return tuple(self.table.split("."))

    @property
    def check_name(self) -> str:
        return "great_expectations"


# ---- small constructors, so the suites below read like a spec ----------------------------------

def not_null(column: str, why: str = "") -> RowExpectation:
    return RowExpectation(f"{column}_not_null", "ExpectColumnValuesToNotBeNull", column,
                          description=why or f"`{column}` is never NULL")


def matches(column: str, regex: str, why: str, name: str | None = None) -> RowExpectation:
    return RowExpectation(name or f"{column}_format", "ExpectColumnValuesToMatchRegex", column,
                          {"regex": regex}, why)


def in_set(column: str, values, why: str = "", name: str | None = None) -> RowExpectation:
    value_set = values if isinstance(values, str) else list(values)
    return RowExpectation(name or f"{column}_in_set", "ExpectColumnValuesToBeInSet", column,
                          {"value_set": value_set}, why or f"`{column}` is one of the allowed values")


def non_negative(column: str) -> RowExpectation:
    return RowExpectation(f"{column}_non_negative", "ExpectColumnValuesToBeBetween", column,
                          {"min_value": 0}, f"`{column}` ≥ 0 (NULL allowed unless a not-null expectation says otherwise)")


def is_true(alias: str, why: str) -> RowExpectation:
    return RowExpectation(alias, "ExpectColumnValuesToBeInSet", alias, {"value_set": [True]}, why)


def unique(*columns: str) -> TableExpectation:
    cols = ", ".join(f"`{c}`" for c in columns)
    return TableExpectation(f"{'_'.join(columns)}_unique", f"({cols}) is unique over the whole table (NULLs excluded)",
                            unique=columns)


def email(column: str, normalized: bool = True) -> RowExpectation:
    if normalized:
        return matches(column, EMAIL_NORMALIZED_RE, f"`{column}` is a well-formed, lower-cased, trimmed email (NULL allowed)")
    return matches(column, EMAIL_RE, f"`{column}` is a well-formed email (NULL allowed)")


def currency(column: str) -> RowExpectation:
    return in_set(column, CURRENCIES, f"`{column}` is an ISO 4217 code (`staging.currencies`; NULL allowed unless not-null)")


def market(column: str) -> RowExpectation:
    return in_set(column, MARKETS, f"`{column}` is a market id of the programs file (NULL allowed unless not-null)")


MONEY_ORDER = ("gross_amount", "discount_amount", "tax_amount", "shipping_amount", "refunded_amount", "net_amount")
FRAUD_PAIRS = [f"{rule}:{severity}" for rule, severity in FRAUD_RULE_SEVERITY.items()]

SUITES: tuple[Suite, ...] = (
    # ---------------------------------------------------------------- staging (WARN)
    Suite(
        table="staging.customers", key=("customer_record_key",), blocking=False,
        description="Customers of every source in one shape.",
        row=(
            not_null("customer_record_key"), not_null("source"), not_null("source_customer_id"),
            matches("customer_record_key", SOURCE_KEY_RE, "`customer_record_key` is `<source>:<source customer id>`"),
            in_set("source_type", SOURCE_TYPES),
            email("email_normalized"),
        ),
        table_checks=(unique("customer_record_key"),),
    ),
    Suite(
        table="staging.orders", key=("order_key",), blocking=False,
        description="Orders of every source in one shape.",
        derived=(Derived("customer_identity", "coalesce(customer_record_key, email_normalized)",
                         ("customer_record_key", "email_normalized")),),
        row=(
            *(not_null(c) for c in ("order_key", "source", "source_order_id", "market_id", "placed_at", "status", "currency")),
            matches("order_key", SOURCE_KEY_RE, "`order_key` is `<source>:<source order id>`"),
            not_null("customer_identity", "every order names a customer record or a buyer email"),
            in_set("status", ORDER_STATUSES),
            currency("currency"), market("market_id"),
            *(non_negative(c) for c in MONEY_ORDER),
            email("email_normalized"),
        ),
        table_checks=(unique("order_key"),),
    ),
    Suite(
        table="staging.refunds", key=("refund_key",), blocking=False,
        description="Refunds and cancellations of every source.",
        row=(
            *(not_null(c) for c in ("refund_key", "order_key", "amount", "created_at", "kind")),
            non_negative("amount"), currency("currency"), in_set("kind", REFUND_KINDS),
        ),
        table_checks=(
            unique("refund_key"),
            TableExpectation("refund_order_known", "every refund's `order_key` is an order in `staging.orders` "
                             "(an orphan usually means its order is quarantined)",
                             sql_file="refunds_order_known.sql", requires=("staging.orders",)),
        ),
    ),
    Suite(
        table="staging.referral_events", key=("event_key",), blocking=False,
        description="Friendbuy referral activity.",
        row=(
            *(not_null(c) for c in ("event_key", "source", "kind", "occurred_at")),
            in_set("kind", REFERRAL_EVENT_KINDS),
            email("advocate_email"), email("friend_email"),
            non_negative("amount"), currency("currency"),
        ),
        table_checks=(unique("event_key"),),
    ),
    # ---------------------------------------------------------------- analytics (push inputs: ERROR, blocking)
    Suite(
        table="analytics.customers", key=("customer_key",), blocking=True,
        description="Golden customers: pushed to Friendbuy, Yotpo, Salesforce and the commerce platforms.",
        watermark_candidates=("load_seq",),
        derived=(Derived("email_trimmed", "trim(email)", ("email",)),),
        row=(
            not_null("customer_key"),
            matches("customer_key", CUSTOMER_KEY_RE, "`customer_key` is `cus_` + 16 hex digits"),
            matches("email_trimmed", EMAIL_RE, "`email` (the golden record's, as sources spell it; surrounding blanks "
                    "ignored) is a well-formed email (NULL allowed)", name="email_format"),
            email("email_normalized"), email("email_canonical"),
            market("market_id"),
            non_negative("orders_count"), non_negative("net_revenue"), non_negative("loyalty_points_balance"),
        ),
        table_checks=(unique("customer_key"),),
    ),
    Suite(
        table="analytics.orders", key=("order_key",), blocking=True,
        description="Orders with their customer and market: pushed to Friendbuy and Yotpo.",
        watermark_candidates=("load_seq",),
        row=(
            *(not_null(c) for c in ("order_key", "source", "source_order_id", "customer_key", "market_id",
                                    "placed_at", "status", "currency")),
            matches("order_key", SOURCE_KEY_RE, "`order_key` is `<source>:<source order id>`"),
            matches("customer_key", CUSTOMER_KEY_RE, "`customer_key` is `cus_` + 16 hex digits"),
            in_set("status", ORDER_STATUSES), currency("currency"), market("market_id"),
            *(non_negative(c) for c in MONEY_ORDER),
        ),
        table_checks=(
            unique("order_key"),
            TableExpectation("order_customer_known", "every order's `customer_key` is a customer in `analytics.customers`",
                             sql_file="orders_customer_known.sql", requires=("analytics.customers",)),
        ),
    ),
    Suite(
        table="analytics.referral_attribution", key=("order_key",), blocking=True,
        description="Attributed orders: every one has an advocate.",
        watermark_candidates=("load_seq",),
        row=(
            *(not_null(c) for c in ("order_key", "friend_customer_key", "campaign_id", "market_id",
                                    "attribution_method", "placed_at")),
            not_null("advocate_customer_key", "every attributed order has an advocate"),
            in_set("attribution_method", ATTRIBUTION_METHODS), market("market_id"), currency("currency"),
            non_negative("net_amount"),
            matches("reward_key", REWARD_KEY_RE, "`reward_key` is `rwd_` + 16 hex digits (NULL until rewards ran)"),
        ),
        table_checks=(
            unique("order_key"),
            TableExpectation("attributed_order_known", "every attributed `order_key` is an order in `analytics.orders`",
                             sql_file="attribution_order_known.sql", requires=("analytics.orders",)),
        ),
    ),
    Suite(
        table="analytics.rewards", key=("reward_key",), blocking=True,
        description="Current state of every advocate reward: pushed to Salesforce and the commerce platforms.",
        watermark_candidates=("load_seq",),
        derived=(Derived("not_eligible_has_reason", "status IS DISTINCT FROM 'not_eligible' OR reason IS NOT NULL",
                         ("status", "reason")),),
        row=(
            *(not_null(c) for c in ("reward_key", "campaign_id", "market_id", "advocate_customer_key",
                                    "friend_customer_key", "order_key", "status", "created_at")),
            matches("reward_key", REWARD_KEY_RE, "`reward_key` is `rwd_` + 16 hex digits"),
            in_set("status", REWARD_STATUSES), market("market_id"), currency("currency"),
            non_negative("amount"),
            is_true("not_eligible_has_reason", "a `not_eligible` reward names its reason"),
        ),
        table_checks=(
            unique("reward_key"),
            unique("campaign_id", "friend_customer_key"),
            TableExpectation("status_matches_ledger", "`status` equals the `to_status` of the reward's last ledger row "
                             "(and every reward has ledger rows)",
                             sql_file="rewards_match_ledger.sql", requires=("analytics.reward_ledger",)),
        ),
    ),
    # ---------------------------------------------------------------- ledger and fraud (WARN)
    Suite(
        table="analytics.reward_ledger", key=("reward_key", "seq"), blocking=False,
        description="Append-only reward status history.",
        watermark_candidates=("load_seq",),
        row=(
            *(not_null(c) for c in ("reward_key", "seq", "to_status", "occurred_at")),
            in_set("to_status", REWARD_STATUSES), in_set("from_status", REWARD_STATUSES),
            RowExpectation("seq_positive", "ExpectColumnValuesToBeBetween", "seq", {"min_value": 1},
                           "`seq` counts from 1"),
        ),
        table_checks=(
            unique("reward_key", "seq"),
            TableExpectation("seq_contiguous", "per reward, `seq` is exactly 1, 2, …, n",
                             sql_file="ledger_seq_contiguous.sql"),
            TableExpectation("status_chain", "per reward, the first row comes from NULL and every `from_status` "
                             "equals the previous row's `to_status`", sql_file="ledger_status_chain.sql"),
            TableExpectation("ledger_reward_known", "every ledger `reward_key` is a reward in `analytics.rewards`",
                             sql_file="ledger_reward_known.sql", requires=("analytics.rewards",)),
        ),
    ),
    Suite(
        table="audit.fraud_flags", key=("flag_id",), blocking=False,
        description="Fraud rule hits, never deleted.",
        watermark_candidates=("load_seq",),
        derived=(Derived("rule_severity", "rule || ':' || severity", ("rule", "severity")),
                 Derived("evidence_text", "CAST(evidence AS VARCHAR)", ("evidence",))),
        row=(
            *(not_null(c) for c in ("flag_id", "rule", "severity", "subject_type", "subject_key", "detected_at")),
            in_set("rule", FRAUD_RULE_SEVERITY), in_set("severity", ("reject", "hold")),
            in_set("rule_severity", FRAUD_PAIRS, "each rule has its product §6 severity (SELF_REFERRAL reject, others hold)"),
            in_set("subject_type", FRAUD_SUBJECT_TYPES),
            RowExpectation("evidence_json", "ExpectColumnValuesToBeJsonParseable", "evidence_text",
                           description="`evidence` is JSON text"),
        ),
        table_checks=(unique("flag_id"),),
    ),
)

SUITES_BY_TABLE: dict[str, Suite] = {s.table: s for s in SUITES}


def suite_for(table: str) -> Suite:
    return SUITES_BY_TABLE[table]
