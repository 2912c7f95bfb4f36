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


# Boundaries, every field of every result (the mutation run of bench/MUTATION.md):
# a comparison off by one step, a rule skipped after another, a tolerance on the
# wrong side or a zero baseline each change one of these.
def full(gates, cand, base=None, why="no baseline"):
    return check_gates(gates, cand, base, why)


def test_absolute_bounds_at_and_just_past_the_threshold() -> None:
    from mlgitops.train.gates import GateResult as R

    gates = {"accuracy": Gate(min=0.9, max=0.99), "log_loss": Gate(max=0.25, max_drop=0.5)}
    assert full(gates, {"accuracy": 0.9, "log_loss": 0.25}, {"log_loss": 0.25}) == [
        R("accuracy", "min", 0.9, 0.9, True, False, "accuracy 0.9000 >= 0.9"),
        R("accuracy", "max", 0.99, 0.9, True, False, "accuracy 0.9000 <= 0.99"),
        R("log_loss", "max", 0.25, 0.25, True, False, "log_loss 0.2500 <= 0.25"),
        R("log_loss", "max_drop", 0.5, 0.0, True, False, "log_loss worsened by 0.0000 (<= 0.5 allowed)", None),
    ]
    assert full(gates, {"accuracy": 0.995, "log_loss": 0.5}, {"log_loss": 0.25}) == [
        R("accuracy", "min", 0.9, 0.995, True, False, "accuracy 0.9950 >= 0.9"),
        R("accuracy", "max", 0.99, 0.995, False, False, "accuracy 0.9950 > 0.99"),
        R("log_loss", "max", 0.25, 0.5, False, False, "log_loss 0.5000 > 0.25"),
        R("log_loss", "max_drop", 0.5, 0.25, True, False, "log_loss worsened by 0.2500 (<= 0.5 allowed)", None),
    ]


def test_a_metric_not_computed_fails_every_rule_and_no_baseline_skips_each_relative_one() -> None:
    from mlgitops.train.gates import GateResult as R

    gates = {"f1": Gate(min=0.5, max=0.99, max_drop=0.1), "rmse": Gate(max_drop=0.5, max_drop_pct=10)}
    assert full(gates, {"f1": None, "rmse": 1.0}, None, "the base commit has no model") == [
        R("f1", "min", 0.5, None, False, False, "f1 could not be computed for the candidate"),
        R("f1", "max", 0.99, None, False, False, "f1 could not be computed for the candidate"),
        R("f1", "max_drop", 0.1, None, False, False, "f1 could not be computed for the candidate"),
        R("rmse", "max_drop", 0.5, None, True, True, "the base commit has no model: relative gate skipped"),
        R("rmse", "max_drop_pct", 10, None, True, True, "the base commit has no model: relative gate skipped"),
    ]
    assert full({"rmse": Gate(max_drop=0.5)}, {"rmse": 1.0}, {"f1": 0.9}) == [R("rmse", "max_drop", 0.5, None, True, True, "no baseline rmse: relative gate skipped")]


def test_relative_gates_at_the_threshold_and_one_step_past() -> None:
    from mlgitops.train.gates import GateResult as R

    gates = {"rmse": Gate(max_drop=1.0, max_drop_pct=25)}
    assert full(gates, {"rmse": 5.0}, {"rmse": 4.0}) == [  # exactly at both thresholds: passes
        R("rmse", "max_drop", 1.0, 1.0, True, False, "rmse worsened by 1.0000 (<= 1 allowed)", None),
        R("rmse", "max_drop_pct", 25, 25.0, True, False, "rmse worsened by 25.00% (<= 25% allowed)", None),
    ]
    assert full(gates, {"rmse": 5.04}, {"rmse": 4.0}) == [  # one percent past: fails
        R("rmse", "max_drop", 1.0, 5.04 - 4.0, False, False, "rmse worsened by 1.0400 (> 1 allowed)", None),
        R("rmse", "max_drop_pct", 25, (5.04 - 4.0) / 4.0 * 100, False, False, "rmse worsened by 26.00% (> 25% allowed)", None),
    ]
    assert full({"rmse": Gate(max_drop_pct=5)}, {"rmse": 1.0625}, {"rmse": 1.0}) == [R("rmse", "max_drop_pct", 5, 6.25, False, False, "rmse worsened by 6.25% (> 5% allowed)", None)]


def test_the_tolerance_widens_the_allowed_drop_by_its_amount() -> None:
    from mlgitops.train.gates import GateResult as R

    assert full({"rmse": Gate(max_drop=0.25, tolerance=0.25)}, {"rmse": 1.5}, {"rmse": 1.0}) == [R("rmse", "max_drop", 0.25, 0.5, True, False, "rmse worsened by 0.5000 (<= 0.25 allowed + 0.25 tolerance)", 0.25)]
    assert full({"rmse": Gate(max_drop=0.25, tolerance=0.25)}, {"rmse": 1.625}, {"rmse": 1.0}) == [R("rmse", "max_drop", 0.25, 0.625, False, False, "rmse worsened by 0.6250 (> 0.25 allowed + 0.25 tolerance)", 0.25)]
    # max_drop_pct: the tolerance as a share of this baseline (0.5 of 4 = 12.5%).
    assert full({"rmse": Gate(max_drop_pct=10, tolerance=0.5)}, {"rmse": 4.5}, {"rmse": 4.0}) == [R("rmse", "max_drop_pct", 10, 12.5, True, False, "rmse worsened by 12.50% (<= 10% allowed + 0.5 tolerance (12.50%))", 0.5)]
    assert full({"rmse": Gate(max_drop_pct=10, tolerance=0.5)}, {"rmse": 5.0}, {"rmse": 4.0}) == [R("rmse", "max_drop_pct", 10, 25.0, False, False, "rmse worsened by 25.00% (> 10% allowed + 0.5 tolerance (12.50%))", 0.5)]
    assert full({"rmse": Gate(max_drop_pct=5, tolerance=0.125)}, {"rmse": 1.125}, {"rmse": 1.0}) == [R("rmse", "max_drop_pct", 5, 12.5, True, False, "rmse worsened by 12.50% (<= 5% allowed + 0.125 tolerance (12.50%))", 0.125)]


def test_a_zero_baseline_in_percent() -> None:
    """No percentage of zero exists: no worsening is 0%, any worsening is infinite,
    unless the tolerance (metric units) covers it."""
    from mlgitops.train.gates import GateResult as R

    inf = float("inf")
    assert full({"rmse": Gate(max_drop_pct=5)}, {"rmse": 0.0}, {"rmse": 0.0}) == [R("rmse", "max_drop_pct", 5, 0.0, True, False, "rmse worsened by 0.00% (<= 5% allowed)", None)]
    assert full({"rmse": Gate(max_drop_pct=5)}, {"rmse": 0.5}, {"rmse": 0.0}) == [R("rmse", "max_drop_pct", 5, inf, False, False, "rmse worsened by inf% (> 5% allowed)", None)]
    tolerant = {"rmse": Gate(max_drop_pct=5, tolerance=0.25)}
    assert full(tolerant, {"rmse": 0.25}, {"rmse": 0.0}) == [R("rmse", "max_drop_pct", 5, inf, True, False, "rmse worsened by inf% (<= 5% allowed + 0.25 tolerance)", 0.25)]  # exactly the tolerance
    assert full(tolerant, {"rmse": 0.125}, {"rmse": 0.0}) == [R("rmse", "max_drop_pct", 5, inf, True, False, "rmse worsened by inf% (<= 5% allowed + 0.25 tolerance)", 0.25)]
    assert full(tolerant, {"rmse": 0.5}, {"rmse": 0.0}) == [R("rmse", "max_drop_pct", 5, inf, False, False, "rmse worsened by inf% (> 5% allowed + 0.25 tolerance)", 0.25)]
    assert full(tolerant, {"rmse": 0.0}, {"rmse": 0.0}) == [R("rmse", "max_drop_pct", 5, 0.0, True, False, "rmse worsened by 0.00% (<= 5% allowed + 0.25 tolerance)", 0.25)]


def test_float_noise_at_a_max_drop_threshold_passes() -> None:
    """A drop past the threshold by float noise (1e-12) still passes; one a hair more
    (2e-12) fails: the tool compares metrics computed twice, and noise must not flip a gate."""
    from mlgitops.train.gates import GateResult as R

    assert full({"accuracy": Gate(max_drop=0)}, {"accuracy": 0.0}, {"accuracy": 1e-12}) == [R("accuracy", "max_drop", 0, 1e-12, True, False, "accuracy worsened by 0.0000 (<= 0 allowed)", None)]
    assert full({"accuracy": Gate(max_drop=0)}, {"accuracy": 0.0}, {"accuracy": 2e-12}) == [R("accuracy", "max_drop", 0, 2e-12, False, False, "accuracy worsened by 0.0000 (> 0 allowed)", None)]


def test_float_noise_at_a_max_drop_pct_threshold_passes() -> None:
    """The same for a percentage: 5% plus 1e-9 points of noise passes, a hair more fails."""
    from mlgitops.train.gates import GateResult as R

    gates = {"rmse": Gate(max_drop_pct=5)}
    assert full(gates, {"rmse": 10.5000000001}, {"rmse": 10.0}) == [R("rmse", "max_drop_pct", 5, 5.000000001, True, False, "rmse worsened by 5.00% (<= 5% allowed)", None)]
    assert full(gates, {"rmse": 10.5000000002}, {"rmse": 10.0})[0].passed is False
