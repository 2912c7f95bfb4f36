"""Gates are direction-aware: a 'drop' is a worsening, whichever way the metric points."""

from __future__ import annotations

from mlgitops.config.loader import Gate
from mlgitops.train.gates import check_gates


def results(gates, cand, base=None):
    return [(r.metric, r.rule, r.passed, r.skipped, r.message) for r in check_gates(gates, cand, base)]


def test_absolute_bounds() -> None:
    assert results({"accuracy": Gate(min=0.9), "log_loss": Gate(max=0.3)}, {"accuracy": 0.85, "log_loss": 0.2}) == [
        ("accuracy", "min", False, False, "accuracy 0.8500 < 0.9"),
        ("log_loss", "max", True, False, "log_loss 0.2000 <= 0.3"),
    ]


def test_drop_for_higher_is_better() -> None:
    gates = {"f1": Gate(max_drop=0.02)}
    assert results(gates, {"f1": 0.90}, {"f1": 0.93}) == [("f1", "max_drop", False, False, "f1 worsened by 0.0300 (> 0.02 allowed)")]
    assert results(gates, {"f1": 0.95}, {"f1": 0.93}) == [("f1", "max_drop", True, False, "f1 worsened by 0.0000 (<= 0.02 allowed)")]


def test_drop_for_lower_is_better() -> None:
    # rmse going UP is the worsening; going down is fine however large.
    gates = {"rmse": Gate(max_drop=0.5, max_drop_pct=10)}
    assert results(gates, {"rmse": 2.0}, {"rmse": 5.0}) == [
        ("rmse", "max_drop", True, False, "rmse worsened by 0.0000 (<= 0.5 allowed)"),
        ("rmse", "max_drop_pct", True, False, "rmse worsened by 0.00% (<= 10% allowed)"),
    ]
    assert results(gates, {"rmse": 5.6}, {"rmse": 5.0}) == [
        ("rmse", "max_drop", False, False, "rmse worsened by 0.6000 (> 0.5 allowed)"),
        ("rmse", "max_drop_pct", False, False, "rmse worsened by 12.00% (> 10% allowed)"),
    ]


def test_exact_threshold_passes() -> None:
    assert results({"f1": Gate(max_drop=0.02)}, {"f1": 0.91}, {"f1": 0.93})[0][2] is True


def test_relative_gate_without_baseline_is_skipped_not_failed() -> None:
    assert results({"f1": Gate(max_drop=0.02)}, {"f1": 0.5}, None) == [("f1", "max_drop", True, True, "no baseline: relative gate skipped")]
    assert results({"f1": Gate(max_drop=0.02)}, {"f1": 0.5}, {"f1": None}) == [("f1", "max_drop", True, True, "no baseline f1: relative gate skipped")]


def test_metric_that_could_not_be_computed_fails_closed() -> None:
    assert results({"roc_auc": Gate(min=0.8)}, {"roc_auc": None}) == [("roc_auc", "min", False, False, "roc_auc could not be computed for the candidate")]
