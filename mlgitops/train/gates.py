"""Merge gates: absolute bounds and direction-aware drops against the baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlgitops.config.loader import Gate
from mlgitops.train.metrics import METRICS


@dataclass(frozen=True)
class GateResult:
    metric: str
    rule: str  # min | max | max_drop | max_drop_pct
    threshold: float
    value: float | None  # what was compared: the metric, or the drop
    passed: bool
    skipped: bool
    message: str
    tolerance: float | None = None  # a relative rule's noise allowance (gates.METRIC.tolerance), metric units


def worsening(metric: str, base: float, candidate: float) -> float:
    """How much worse the candidate is (positive = worse), in the metric's own units."""
    return base - candidate if METRICS[metric].higher_is_better else candidate - base


def check_gates(gates: dict[str, Gate], candidate: dict[str, float | None], baseline: dict[str, float | None] | None, why_no_baseline: str = "no baseline") -> list[GateResult]:
    """Every configured rule, in config order. A metric that could not be computed fails."""
    results: list[GateResult] = []
    for metric, gate in gates.items():
        value = candidate.get(metric)
        for rule in ("min", "max", "max_drop", "max_drop_pct"):
            threshold = getattr(gate, rule)
            if threshold is None:
                continue
            if value is None:
                results.append(GateResult(metric, rule, threshold, None, False, False, f"{metric} could not be computed for the candidate"))
                continue
            if rule == "min":
                ok = value >= threshold
                results.append(GateResult(metric, rule, threshold, value, ok, False, f"{metric} {value:.4f} {'>=' if ok else '<'} {threshold:g}"))
                continue
            if rule == "max":
                ok = value <= threshold
                results.append(GateResult(metric, rule, threshold, value, ok, False, f"{metric} {value:.4f} {'<=' if ok else '>'} {threshold:g}"))
                continue
            base = (baseline or {}).get(metric)
            if base is None:
                results.append(GateResult(metric, rule, threshold, None, True, True, f"{why_no_baseline if baseline is None else f'no baseline {metric}'}: relative gate skipped"))
                continue
            drop = worsening(metric, base, value)
            tol = gate.tolerance or 0.0
            if rule == "max_drop":
                ok = drop <= threshold + tol + 1e-12
                allowed = f"{threshold:g} allowed" + (f" + {tol:g} tolerance" if tol else "")
                results.append(GateResult(metric, rule, threshold, drop, ok, False, f"{metric} worsened by {max(drop, 0):.4f} ({'<=' if ok else '>'} {allowed})", gate.tolerance))
            else:
                if base != 0:
                    pct = drop / abs(base) * 100
                    # The tolerance is in metric units, like the spread of repeats: as a share of this baseline here.
                    tol_pct = tol / abs(base) * 100
                    ok = pct <= threshold + tol_pct + 1e-9
                else:  # no share of a zero baseline: any worsening past the tolerance is infinite
                    pct = 0.0 if drop <= 0 else math.inf
                    ok = drop <= tol
                allowed = f"{threshold:g}% allowed" + (f" + {tol:g} tolerance ({tol_pct:.2f}%)" if tol and base != 0 else (f" + {tol:g} tolerance" if tol else ""))
                results.append(GateResult(metric, rule, threshold, pct, ok, False, f"{metric} worsened by {max(pct, 0):.2f}% ({'<=' if ok else '>'} {allowed})", gate.tolerance))
    return results
