"""The data contract (`data.contract` in mlops.yaml), checked before training.

Row counts, missing values, ranges and allowed values are Evidently metrics with
Evidently tests (its maintained data checks); each result is read back as plain data
for the report: column, check, expected, found, how many rows violate it. Column types
are checked with pandas, because Evidently has no test for a column's type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlgitops.config.loader import LoadedConfig
from mlgitops.train.gates import GateResult

CONTRACT_GATE = "contract"


@dataclass
class Check:
    column: str  # "(rows)" for the table-level row count
    check: str  # type | missing | range | allowed | rows
    expected: str
    found: str
    violations: int  # rows that break it (0 when it holds)
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _type_check(frame: Any, column: str, kind: str) -> Check:
    import pandas as pd

    values = frame[column]
    present = values.dropna()
    dtype = values.dtype
    if kind == "number":
        bad = 0 if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) else int(pd.to_numeric(present, errors="coerce").isna().sum())
    elif kind == "integer":
        numbers = pd.to_numeric(present, errors="coerce")
        bad = int(numbers.isna().sum() + ((numbers.dropna() % 1) != 0).sum())
    elif kind == "boolean":
        bad = 0 if pd.api.types.is_bool_dtype(dtype) else int((~present.isin([True, False, 0, 1, "true", "false", "True", "False"])).sum())
    else:  # string
        bad = 0 if dtype == object or pd.api.types.is_string_dtype(dtype) else len(present)
    found = str(dtype) if not bad else f"{bad} value(s) that are not {kind} (dtype {dtype})"
    return Check(column, "type", kind, found, bad, bad == 0)


def check_contract(cfg: LoadedConfig, frame: Any) -> list[Check]:
    """Every check of the contract on ``frame`` (the rows the model learns from)."""
    import pandas as pd
    from evidently import Report
    from evidently.metrics import MissingValueCount, OutListValueCount, OutRangeValueCount, RowCount
    from evidently.tests import gte, lte

    contract = cfg.config.data.contract
    assert contract is not None
    checks: list[Check] = []
    metrics: list[Any] = []
    plan: list[tuple[str, str, str]] = []  # (column, check, expected) per metric, in order
    if contract.rows is not None:
        tests = ([gte(contract.rows.min)] if contract.rows.min is not None else []) + ([lte(contract.rows.max)] if contract.rows.max is not None else [])
        metrics.append(RowCount(tests=tests))
        bounds = f"{contract.rows.min if contract.rows.min is not None else 0} to {contract.rows.max if contract.rows.max is not None else '∞'} rows"
        plan.append(("(rows)", "rows", bounds))
    for column, spec in contract.columns.items():
        if column not in frame.columns:
            checks.append(Check(column, "present", "a column of the data", "missing from the data", len(frame), False))
            continue
        if spec.type is not None:
            checks.append(_type_check(frame, column, spec.type))
        share = 0.0 if spec.nullable is False else spec.max_null_share
        if share is not None:
            metrics.append(MissingValueCount(column=column, share_tests=[lte(share)]))
            plan.append((column, "missing", "no missing values" if share == 0 else f"at most {share:.1%} missing"))
        numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
        if spec.min is not None or spec.max is not None:
            left = spec.min if spec.min is not None else float("-inf")
            right = spec.max if spec.max is not None else float("inf")
            if numeric:
                metrics.append(OutRangeValueCount(column=column, left=left, right=right, tests=[lte(0)]))
                plan.append((column, "range", f"{_num(left)} to {_num(right)}"))
            else:  # a range needs numbers; Evidently would crash comparing text with them
                values = frame[column].dropna()
                bad = int(pd.to_numeric(values, errors="coerce").isna().sum())
                checks.append(Check(column, "range", f"{_num(left)} to {_num(right)}", f"{bad} value(s) that are not numbers (dtype {frame[column].dtype})", bad, False))
        if spec.allowed is not None:
            allowed = [_as_number(v) for v in spec.allowed] if numeric else list(spec.allowed)
            metrics.append(OutListValueCount(column=column, values=allowed, tests=[lte(0)]))
            plan.append((column, "allowed", "one of " + ", ".join(map(str, spec.allowed[:8])) + (" ..." if len(spec.allowed) > 8 else "")))
    if metrics:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Evidently warns about its own deprecations
            snapshot = Report(metrics).run(current_data=frame)
        result = snapshot.dict()
        ids = [m["id"] for m in result["metrics"]]
        failed = {t["metric_config"]["metric_id"] for t in result["tests"] if "FAIL" in str(t["status"]) or "ERROR" in str(t["status"])}
        for metric_id, value, (column, kind, expected) in zip(ids, [m["value"] for m in result["metrics"]], plan):
            checks.append(_read(column, kind, expected, value, metric_id not in failed, len(frame)))
    order = {"(rows)": -1}
    return sorted(checks, key=lambda c: order.get(c.column, 0))


def _read(column: str, kind: str, expected: str, value: Any, passed: bool, rows: int) -> Check:
    if kind == "rows":
        count = int(value)
        return Check(column, kind, expected, f"{count} rows", 0 if passed else rows, passed)
    count = int(value["count"])
    share = float(value["share"])
    if kind == "missing":
        found = f"{count} missing ({share:.1%})"
    elif kind == "range":
        found = f"{count} row(s) outside ({share:.1%})" if count else "all inside"
    else:
        found = f"{count} row(s) with other values ({share:.1%})" if count else "all allowed"
    return Check(column, kind, expected, found, count, passed)


def _as_number(value: Any) -> Any:
    """'1' in `allowed` means the number 1 on a numeric column (CSV gives numbers)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def _num(value: float) -> str:
    if value in (float("inf"), float("-inf")):
        return "∞" if value > 0 else "-∞"
    return f"{value:g}"


def contract_gates(checks: list[Check], enforced: bool) -> list[GateResult]:
    """One gate row per broken check (or one passing row); warn-only rows are skipped."""
    broken = [c for c in checks if not c.passed]
    if not broken:
        return [GateResult(CONTRACT_GATE, "contract", 0.0, 0.0, True, False, f"data contract: all {len(checks)} checks hold")]
    out = []
    for c in broken:
        text = f"data contract: {c.column}: {c.check}: expected {c.expected}, found {c.found}"
        out.append(GateResult(CONTRACT_GATE, "contract", 0.0, float(c.violations), not enforced, not enforced, text + ("" if enforced else " (data.contract.on_violation: warn)")))
    return out
