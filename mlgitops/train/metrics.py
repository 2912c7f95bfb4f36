"""Metric registry: name -> how to compute it and which direction is better.

A plain dict of specs (STYLE.md #6). scikit-learn is imported lazily so that
`mlops validate` and the cached fast path never pay for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    task: Task
    higher_is_better: bool
    needs_proba: bool
    bounded_01: bool
    description: str
    compute: Callable[[Any, Any, Any, list[Any]], float]


def _accuracy(y, pred, proba, labels):
    from sklearn.metrics import accuracy_score

    return accuracy_score(y, pred)


def _averaged(fn_name: str) -> Callable[[Any, Any, Any, list[Any]], float]:
    def compute(y, pred, proba, labels):
        import sklearn.metrics as m

        fn = getattr(m, fn_name)
        if len(labels) == 2:
            # Binary: score the positive class, i.e. the larger label (1, True, "yes"...).
            return fn(y, pred, average="binary", pos_label=labels[1], zero_division=0)
        return fn(y, pred, average="macro", labels=labels, zero_division=0)

    return compute


def _roc_auc(y, pred, proba, labels):
    from sklearn.metrics import roc_auc_score

    if len(labels) == 2:
        return roc_auc_score(y, proba[:, 1])
    return roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)


def _log_loss(y, pred, proba, labels):
    from sklearn.metrics import log_loss

    return log_loss(y, proba, labels=labels)


def _mae(y, pred, proba, labels):
    from sklearn.metrics import mean_absolute_error

    return mean_absolute_error(y, pred)


def _rmse(y, pred, proba, labels):
    from sklearn.metrics import mean_squared_error

    return math.sqrt(mean_squared_error(y, pred))


def _r2(y, pred, proba, labels):
    from sklearn.metrics import r2_score

    return r2_score(y, pred)


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in [
        MetricSpec("accuracy", "classification", True, False, True, "share of correct labels", _accuracy),
        MetricSpec("precision", "classification", True, False, True, "precision (binary: positive class; multiclass: macro)", _averaged("precision_score")),
        MetricSpec("recall", "classification", True, False, True, "recall (binary: positive class; multiclass: macro)", _averaged("recall_score")),
        MetricSpec("f1", "classification", True, False, True, "F1 (binary: positive class; multiclass: macro)", _averaged("f1_score")),
        MetricSpec("roc_auc", "classification", True, True, True, "area under the ROC curve (multiclass: one-vs-rest macro)", _roc_auc),
        MetricSpec("log_loss", "classification", False, True, False, "cross-entropy of predicted probabilities", _log_loss),
        MetricSpec("mae", "regression", False, False, False, "mean absolute error", _mae),
        MetricSpec("rmse", "regression", False, False, False, "root mean squared error", _rmse),
        MetricSpec("r2", "regression", True, False, False, "coefficient of determination", _r2),
    ]
}

DEFAULT_METRICS: dict[str, list[str]] = {
    "classification": ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"],
    "regression": ["mae", "rmse", "r2"],
}
