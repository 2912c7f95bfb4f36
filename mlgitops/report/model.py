"""The run report as plain data (STYLE.md #5). Every rendering reads this structure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from typing import Any

from mlgitops.config.loader import Config
from mlgitops.train.gates import GateResult
from mlgitops.train.metrics import METRICS

REPORT_SCHEMA = 1
SAME_EPS = 1e-12


@dataclass
class MetricRow:
    name: str
    higher_is_better: bool
    base: float | None
    candidate: float | None
    delta: float | None
    delta_pct: float | None
    change: str  # better | worse | same | n/a
    gate: str  # pass | fail | skipped | "" (no gate)
    note: str = ""


@dataclass
class ModelInfo:
    role: str  # candidate | baseline
    source: str  # trained | cache | manifest | none
    ref: str | None
    sha: str | None
    key: str | None = None
    train_seconds: float | None = None
    trained_with: str | None = None
    data_sha256: str | None = None
    code_sha256: str | None = None
    code_files: list[str] = field(default_factory=list)
    scored_on: str | None = None  # "candidate holdout" | "its own holdout (recorded)"
    note: str = ""
    version: Any = None


@dataclass
class Change:
    key: str
    base: Any
    candidate: Any


@dataclass
class Report:
    name: str
    task: str
    task_reason: str
    verdict: str  # pass | fail
    summary: str
    event: dict[str, Any]
    metrics: list[MetricRow]
    gates: list[GateResult]
    candidate: ModelInfo
    baseline: ModelInfo
    config_changes: list[Change]
    data: dict[str, Any]
    confusion: dict[str, Any] | None
    notes: list[str]
    timings: dict[str, float]
    reused: bool = False
    export: dict[str, Any] | None = None  # ExportOutcome.to_dict(): ONNX sha256, parity
    contract: list[dict[str, Any]] | None = None  # contract.Check.to_dict() per check
    drift: dict[str, Any] | None = None  # drift.DriftResult.to_dict(), or {"unavailable": why}
    sweep: list[dict[str, Any]] | None = None  # a sweep's candidates, best first (sweep.run_sweep)
    repeats: dict[str, Any] | None = None  # training.repeats > 1: the candidate's seeds and per-metric mean/min/max/std (steps.repeat_spread)
    reproducibility: dict[str, Any] | None = None  # a training of identical inputs compared with an earlier one (steps.check_reproducible)
    tracking: dict[str, Any] | None = None  # tracking.mlflow: {experiment, server, runs: [{side, run_id, url}], reused} or {experiment, runs: [], error, required} (tracking.mlflow_runs)
    charts: dict[str, Any] | None = None  # report.charts: {"history": deploy.history.baseline_history(), "roc": train.curves.roc_curves()}, numbers only; the Mermaid text is report.charts' work
    tool_version: str = field(default_factory=lambda: version("mlgitops"))
    schema: int = REPORT_SCHEMA
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Report":
        raw = dict(raw)
        raw["metrics"] = [MetricRow(**m) for m in raw["metrics"]]
        raw["gates"] = [GateResult(**g) for g in raw["gates"]]
        raw["candidate"] = ModelInfo(**raw["candidate"])
        raw["baseline"] = ModelInfo(**raw["baseline"])
        raw["config_changes"] = [Change(**c) for c in raw["config_changes"]]
        return cls(**raw)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def metric_rows(names: list[str], cand: dict[str, float | None], base: dict[str, float | None] | None, gates: list[GateResult], unavailable: dict[str, str]) -> list[MetricRow]:
    rows = []
    for name in names:
        spec = METRICS[name]
        c = cand.get(name)
        b = (base or {}).get(name)
        delta = pct = None
        change = "n/a"
        if c is not None and b is not None:
            delta = c - b
            pct = (delta / abs(b) * 100) if b else None
            if abs(delta) <= SAME_EPS:
                change = "same"
            else:
                change = "better" if (delta > 0) == spec.higher_is_better else "worse"
        mine = [g for g in gates if g.metric == name]
        gate = ""
        if mine:
            gate = "fail" if any(not g.passed for g in mine) else ("skipped" if all(g.skipped for g in mine) else "pass")
        rows.append(MetricRow(name, spec.higher_is_better, b, c, delta, pct, change, gate, unavailable.get(name, "")))
    return rows


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_changes(base: Config | None, candidate: Config) -> list[Change]:
    """Every config value that differs, flattened (``training.params.max_depth``)."""
    if base is None:
        return []
    b = flatten(base.model_dump(mode="json", exclude_none=True))
    c = flatten(candidate.model_dump(mode="json", exclude_none=True))
    return [Change(k, b.get(k), c.get(k)) for k in sorted(set(b) | set(c)) if b.get(k) != c.get(k)]


def summarize(gates: list[GateResult]) -> tuple[str, str]:
    failed = [g for g in gates if not g.passed]
    if failed:
        first = failed[0].message
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        return "fail", f"{len(failed)} of {len(gates)} gate {_checks(len(gates))} failed: {first}{more}"
    if not gates:
        return "pass", "No gates configured"
    checked = [g for g in gates if not g.skipped]
    no_base = sum(1 for g in gates if g.skipped and (g.metric in METRICS or g.metric == "drift"))
    warned = any(g.skipped and g.metric == "onnx" for g in gates)
    broken = sum(1 for g in gates if g.skipped and g.metric == "contract")
    head = f"All {len(checked)} gate {_checks(len(checked))} passed" if checked else "No gate could be checked"
    tail = (f", {no_base} skipped (no baseline)" if no_base else "") + (", ONNX not deployable (warn only)" if warned else "")
    return "pass", head + tail + (f", {broken} data contract {_checks(broken)} broken (warn only)" if broken else "")


def _checks(n: int) -> str:
    return "check" if n == 1 else "checks"
