"""Great Expectations on pandas DataFrames (stack reference §B4.1): an ephemeral context, progress
bars off, one suite per table, COMPLETE results with the row key as index column so failing rows
can be named.

``great_expectations`` is imported here lazily (it takes seconds); nothing imports this module
at definition-load time, and the runner only loads it when there are rows to validate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Sequence

from .suites import RowExpectation

ROW_KEY = "__dq_row_key"
_gx_modules: tuple[Any, Any, Any] | None = None


def _load_gx():
    global _gx_modules
    if _gx_modules is None:
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types import base

        _gx_modules = (gx, gxe, base)
    return _gx_modules


def json_safe(value: Any) -> Any:
    """A value GX reported (numpy scalar, Timestamp, Decimal, NaN) as plain JSON."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


@dataclass
class GxOutcome:
    """One row-level expectation's result, accumulated over the chunks of the delta."""

    name: str
    success: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    unexpected_values: list[Any] = field(default_factory=list)
    failing_keys: list[str] = field(default_factory=list)
    error: str | None = None


def _exception_message(info: Any) -> str | None:
    """GX reports a raised expectation either at the top level of ``exception_info`` or per metric
    (``{metric id: {raised_exception, exception_message}}``); returns the first message, if any."""
    if not isinstance(info, dict):
        return None
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for c in candidates:
        if c.get("raised_exception"):
            return str(c.get("exception_message") or "expectation raised").splitlines()[0][:500]
    return None


class GxValidator:
    """Validates DataFrames against one suite's row-level expectations."""

    def __init__(self, suite_name: str, expectations: Sequence[tuple[RowExpectation, dict[str, Any]]],
                 sample_size: int = 5):
        gx, gxe, base = _load_gx()
        self.sample_size = sample_size
        # in-memory stores, no data-docs site, no progress bars, no usage statistics
        config = base.DataContextConfig(store_backend_defaults=base.InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                                        progress_bars=base.ProgressBarsConfig(globally=False, metric_calculations=False),
                                        analytics_enabled=False)
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        batch = (self.context.data_sources.add_pandas(f"dq_{suite_name}")
                 .add_dataframe_asset("delta").add_batch_definition_whole_dataframe("delta"))
        gx_expectations = []
        for exp, kwargs in expectations:
            cls = getattr(gxe, exp.gx_type)
            gx_expectations.append(cls(column=exp.column, meta={"dq_name": exp.name}, **kwargs))
        suite = self.context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=gx_expectations))
        self.definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate_{suite_name}", data=batch, suite=suite))
        self.names = [exp.name for exp, _ in expectations]

    def validate(self, frame, outcomes: dict[str, GxOutcome]) -> None:
        """Runs the suite on ``frame`` (which has the ``__dq_row_key`` column) and folds the result
        into ``outcomes`` (name -> GxOutcome)."""
        result = self.definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_KEY],
                           "partial_unexpected_count": self.sample_size, "return_unexpected_index_query": False})
        for r in result.results:
            name = (r.expectation_config.meta or {}).get("dq_name")
            out = outcomes.setdefault(name, GxOutcome(name))
            error = _exception_message(r.exception_info)
            if error:
                out.success = False
                out.error = error
                continue
            res = r.result or {}
            out.success = out.success and bool(r.success)
            out.element_count += int(res.get("element_count") or 0)
            out.unexpected_count += int(res.get("unexpected_count") or 0)
            room = self.sample_size - len(out.unexpected_values)
            if room > 0:
                out.unexpected_values.extend(json_safe(v) for v in (res.get("partial_unexpected_list") or [])[:room])
            for entry in res.get("unexpected_index_list") or []:
                key = entry.get(ROW_KEY) if isinstance(entry, dict) else None
                if key is not None:
                    out.failing_keys.append(str(key))
